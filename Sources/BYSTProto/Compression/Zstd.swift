import CZstd

/// Bounded zstd (de)compression for record payloads (PROTOCOL.md §4.2): one-shot helpers
/// that allocate per call, and the error type. Links use `RecordCompressor`, which reuses
/// its zstd contexts and scratch.
///
/// **Invariants**: decompression never produces more than `limit` bytes: a frame that
/// would expand past it — a decompression bomb — is an error, not an allocation.
public enum Zstd {
    public enum Failure: Error, Equatable, Sendable {
        /// The frame would decompress to more than the limit.
        case exceedsLimit(Int)
        /// Not a valid zstd frame (the library's error name).
        case corrupt(String)
    }

    /// Compresses `input` at `level`; nil when the result would not be smaller (the caller
    /// then sends the payload uncompressed).
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3) -> [UInt8]? {
        guard input.count > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let written = out.withUnsafeMutableBytes { dst in
            ZSTD_compress(dst.baseAddress, dst.count, input.baseAddress, input.count, level)
        }
        guard ZSTD_isError(written) == 0, written < input.count else { return nil }
        out.removeLast(out.count - written)
        return out
    }

    /// Decompresses one frame into at most `limit` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(Failure) -> [UInt8] {
        let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        // ZSTD_CONTENTSIZE_ERROR is (0ULL - 2), ZSTD_CONTENTSIZE_UNKNOWN is (0ULL - 1).
        if declared == UInt64.max - 1 { throw .corrupt("not a zstd frame") }
        if declared != UInt64.max, declared > UInt64(limit) { throw .exceedsLimit(limit) }
        var out = [UInt8](repeating: 0, count: limit)
        let written = out.withUnsafeMutableBytes { dst in
            ZSTD_decompress(dst.baseAddress, dst.count, input.baseAddress, input.count)
        }
        if ZSTD_isError(written) != 0 {
            let name = String(cString: ZSTD_getErrorName(written))
            if ZSTD_getErrorCode(written) == ZSTD_error_dstSize_tooSmall { throw .exceedsLimit(limit) }
            throw .corrupt(name)
        }
        out.removeLast(out.count - written)
        return out
    }
}
