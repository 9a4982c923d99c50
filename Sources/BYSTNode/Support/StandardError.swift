import Glibc

/// Writes `text` to standard error in one write(2) call (short writes aside), so lines from
/// several threads do not interleave. Failures are ignored: there is nowhere to report them.
func writeStandardError(_ text: String) { writeAll(Array(text.utf8), to: STDERR_FILENO) }

/// Writes all of `bytes` to `descriptor`, retrying short writes and EINTR. Returns nil, or
/// the errno of the write that failed (EIO for one that wrote nothing); callers writing to a
/// pipe may ignore it (a closed pipe: the reader went away).
@discardableResult
func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Int32? {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                return written < 0 ? errno : EIO
            }
        }
        return nil
    }
}
