// The zstd state of one link, reused for every record (PROTOCOL.md §4.2):
//
//   compress:   payload in the record buffer ──ZSTD_compress2──▶ scratch   (dst capacity = the
//               most the result may weigh to be worth it; larger = "not smaller", no output)
//   decompress: zstd frame ──ZSTD_decompressDCtx──▶ exact-size buffer      (declared size ≤ limit)
//                                              └──▶ scratch ▸ copy        (size not declared)
//
// Contexts and scratch are created on first use and live as long as the link, so a link that
// never compresses costs nothing and one that does allocates nothing per record once warm.
import CZstd

/// Owns a `ZSTD_CCtx`, a `ZSTD_DCtx` and a scratch buffer (C resources: a class, freed in
/// `deinit`).
///
/// **Invariants**: `decompress` never writes more than `limit` bytes anywhere and never
/// allocates more than `limit` bytes for one frame, whatever the frame claims; the scratch
/// grows only to sizes the caller asks for (≤ a max record payload, 1 MiB), never to a size
/// read from the peer.
final class ZstdContext {
    private var cctx: OpaquePointer?
    private var dctx: OpaquePointer?
    private var scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var configuredLevel: Int32?

    init() {}

    deinit {
        if let cctx { ZSTD_freeCCtx(cctx) }
        if let dctx { ZSTD_freeDCtx(dctx) }
        scratch.deallocate()
    }

    /// Bytes held by the scratch buffer (tests check it never follows a frame's claim).
    var scratchCapacity: Int { scratch.count }

    /// A scratch of at least `count` bytes.
    private func scratch(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if scratch.count < count {
            scratch.deallocate()
            scratch = .allocate(byteCount: count, alignment: 16)
        }
        return scratch
    }

    /// Compresses `source` as one zstd frame into the scratch if the frame fits in `capacity`
    /// bytes; returns the frame, or nil when it would not fit (not worth it) or zstd failed.
    /// The result is valid until the next call.
    func compress(_ source: UnsafeRawBufferPointer, capacity: Int, level: Int32) -> UnsafeRawBufferPointer? {
        guard capacity > 0, let cctx = compressionContext(level: level) else { return nil }
        let destination = scratch(capacity)
        let written = ZSTD_compress2(cctx, destination.baseAddress, capacity, source.baseAddress, source.count)
        // dstSize_tooSmall is the common "does not shrink enough" answer.
        guard ZSTD_isError(written) == 0, written <= capacity else { return nil }
        return UnsafeRawBufferPointer(rebasing: destination[0..<written])
    }

    private func compressionContext(level: Int32) -> OpaquePointer? {
        if cctx == nil { cctx = ZSTD_createCCtx() }
        guard let cctx else { return nil }
        if configuredLevel != level {
            // No checksum: the AEAD tag already authenticates every byte (default is off; set
            // explicitly so a library default change cannot add 4 bytes per record).
            guard ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) == 0,
                  ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0)) == 0,
                  ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)) == 0
            else { return nil }
            configuredLevel = level
        }
        return cctx
    }

    /// How one frame decompresses.
    enum Plan {
        /// The frame declares its size (always so from BYST senders): decompress straight
        /// into a buffer of exactly that many bytes.
        case declared(Int)
        /// No declared size: decompress into the scratch (`limit` bytes), then copy.
        case unknown
    }

    /// Checks `frame` is exactly one zstd frame whose declared size (if any) is ≤ `limit`,
    /// before anything is allocated for it.
    func plan(_ frame: UnsafeRawBufferPointer, limit: Int) throws(Zstd.Failure) -> Plan {
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        // ZSTD_CONTENTSIZE_ERROR is (0ULL - 2), ZSTD_CONTENTSIZE_UNKNOWN is (0ULL - 1).
        if declared == UInt64.max - 1 { throw .corrupt("not a zstd frame") }
        // A declared bomb is refused from its header alone.
        if declared != UInt64.max, declared > UInt64(limit) { throw .exceedsLimit(limit) }
        let frameSize = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
        if ZSTD_isError(frameSize) != 0 { throw .corrupt(String(cString: ZSTD_getErrorName(frameSize))) }
        // PROTOCOL.md §4.2: the payload is one frame, nothing after it.
        guard frameSize == frame.count else { throw .corrupt("\(frame.count - frameSize) bytes after the frame") }
        return declared == UInt64.max ? .unknown : .declared(Int(declared))
    }

    /// Decompresses one frame into `destination` (its declared size); returns the bytes written.
    func decompress(_ frame: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws(Zstd.Failure) -> Int {
        if dctx == nil { dctx = ZSTD_createDCtx() }
        guard let dctx else { throw .corrupt("cannot allocate a zstd decompression context") }
        let written = ZSTD_decompressDCtx(dctx, destination.baseAddress, destination.count, frame.baseAddress, frame.count)
        if ZSTD_isError(written) != 0 {
            // Declared size smaller than the content: lying about it is corruption.
            throw .corrupt(String(cString: ZSTD_getErrorName(written)))
        }
        guard written == destination.count else { throw .corrupt("frame content shorter than its declared size") }
        return written
    }

    /// Decompresses a frame of undeclared size into the scratch, stopping at `limit` bytes;
    /// returns the content (valid until the next call).
    func decompressUnknownSize(_ frame: UnsafeRawBufferPointer, limit: Int) throws(Zstd.Failure) -> UnsafeRawBufferPointer {
        if dctx == nil { dctx = ZSTD_createDCtx() }
        guard let dctx else { throw .corrupt("cannot allocate a zstd decompression context") }
        let destination = scratch(limit)
        let written = ZSTD_decompressDCtx(dctx, destination.baseAddress, limit, frame.baseAddress, frame.count)
        if ZSTD_isError(written) != 0 {
            if ZSTD_getErrorCode(written) == ZSTD_error_dstSize_tooSmall { throw .exceedsLimit(limit) }
            throw .corrupt(String(cString: ZSTD_getErrorName(written)))
        }
        return UnsafeRawBufferPointer(rebasing: destination[0..<written])
    }
}
