import Glibc

/// Writes `text` to standard error in one write(2) call (short writes aside), so lines from
/// several threads do not interleave. Failures are ignored: there is nowhere to report them.
func writeStandardError(_ text: String) { writeAll(text, to: STDERR_FILENO) }

/// Writes all of `text` to `descriptor`, retrying short writes and EINTR; gives up silently
/// on any other failure (a closed pipe: the reader went away).
func writeAll(_ text: String, to descriptor: Int32) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}
