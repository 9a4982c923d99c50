// Record compression of one link (PROTOCOL.md §4.2). Compression happens before encryption:
//
//   send:    beginRecord ▸ session frames ▸ compress(payload, in place) ▸ finishRecord(flags)
//            [frames ………………………]  ─zstd─▶ scratch ─copy back─▶ [zstd frame]  (writer index
//            moves back; flag 0x01) — or, when not allowed / skipped / not smaller, untouched
//   receive: RecordOpener.open ─▶ flag 0x01? ─▶ decompress into ≤ our max record payload
//            ─▶ SessionMachine.receive
//
// Which records: only when the feature was negotiated and the peer's `compression` setting
// allows it — `streams` compresses records without packet frames, `all` every record.
//
// Incompressible data (encrypted inner traffic, media, archives) must cost ~nothing. Two
// detectors were measured on random data (`zstd -b`, libzstd 1.5.4, this project's 2-core
// EPYC; docs/perf-log/2026-11-27-compression-issue-8.md): a full level-3 attempt on a 64 KiB record
// runs at 1.7 GB/s, ≈38 µs finding nothing — more than sealing the record (≈25 µs at
// 2.6 GB/s); a 4 KiB level-1 prefix sample runs at 0.64 GB/s, ≈6.4 µs on *every* record
// (+25 % on the seal cost, forever), and misjudges records whose first 4 KiB differ from
// the rest (frames of two streams, text after a TLS record). Adaptive skipping pays one
// full attempt, then skips: after a record that does not shrink by ≥ 1/32, the next 1, 2,
// 4 … 64 eligible records go out as they are; a record that does shrink resets the backoff
// to 1. On a random stream that is one attempt per 65 records, ≈0.6 µs per record
// amortised (≈2 % of the seal cost), and compressible data is noticed again within 64
// records. Chosen.
import NIOCore

/// Which records a node compresses towards one peer (`[[peer]] compression`).
public enum CompressionScope: String, Sendable, CaseIterable {
    /// Never compress; when we dial, the feature is not even offered.
    case off
    /// Records carrying only stream data and control frames; records with TUN packets are
    /// sent as they are (PROTOCOL.md §4.2: the length-leak trade-off).
    case streams
    /// Every record, TUN packets included.
    case all
}

/// Per-link record compressor and decompressor (PROTOCOL.md §4.2), sans-IO.
///
/// **Invariants**
/// - Nothing is compressed unless the link negotiated the feature (`init(negotiated:…)`),
///   and a record carrying packet frames only with scope `.all`.
/// - A compressed payload is always strictly smaller than the original: it is never
///   larger than the sender's limit, and the flag is set only when the payload was replaced.
/// - `decompress` yields at most `limit` bytes and never allocates more than that for one
///   record, whatever the frame declares: a bomb is an error, not an allocation.
/// - The send side reuses its contexts and scratch: once a full-size record has been
///   compressed, records allocate nothing (measured with a counting allocator: 0 in 2,000
///   records of bulk, random or interleaved sizes). zstd shrinks its workspace after 128
///   records in a row that need under a third of it, then grows it back as larger ones
///   come: a transient, a few allocations. The receive side allocates each decompressed
///   payload (the session keeps slices of it), never more than `limit`.
public struct RecordCompressor {
    /// Running totals for status output.
    public struct Counters: Sendable, Equatable {
        /// Records sent with a zstd payload.
        public var recordsCompressed: UInt64 = 0
        /// Records sent as they are (not eligible, skipped, or not smaller).
        public var recordsUncompressed: UInt64 = 0
        /// Compression runs (a skipped record costs none).
        public var attempts: UInt64 = 0
        /// Payload bytes of every record sent, before compression…
        public var bytesBefore: UInt64 = 0
        /// …and as sealed.
        public var bytesAfter: UInt64 = 0
        /// Compressed records received, their compressed and decompressed bytes.
        public var recordsDecompressed: UInt64 = 0
        public var decompressedBytesIn: UInt64 = 0
        public var decompressedBytesOut: UInt64 = 0

        public init() {}

        /// Sent payload bytes after / before compression (1 when nothing was sent).
        public var ratio: Double { bytesBefore == 0 ? 1 : Double(bytesAfter) / Double(bytesBefore) }
    }

    /// Payloads below this are never compressed: zstd's frame and block headers (≥ 6 bytes)
    /// eat most of what could be saved, and such records hold acks and pings, whose counters
    /// do not compress.
    public static let minimumPayload = 256
    /// A record must shrink by at least 1/32 (≈3 %) to go out compressed; less is not worth
    /// the receiver's decompression, and counts as incompressible for the backoff.
    public static let minimumSavingShift = 5
    /// After consecutive failed attempts, skip up to this many eligible records: a random
    /// stream costs one attempt in 65 records.
    public static let maximumBackoff = 64
    public static let defaultLevel: Int32 = 3
    /// Levels the config accepts: 20…22 ("ultra") need tens of MiB per context.
    public static let levelRange: ClosedRange<Int32> = 1...19

    /// What this side compresses (effective: `.off` unless negotiated).
    public let scope: CompressionScope
    /// Whether the peer may send compressed records (both hellos offered the feature).
    public let acceptsCompressed: Bool
    public let level: Int32
    public private(set) var counters = Counters()
    /// Eligible records still to send without trying.
    private(set) var skipRemaining = 0
    /// Records to skip after the next failed attempt (1, 2, 4 … `maximumBackoff`).
    private(set) var backoff = 1
    private let context = ZstdContext()

    /// - Parameters:
    ///   - negotiated: both hellos offered `LinkFeatures.compression`.
    ///   - scope: our setting for this peer.
    public init(negotiated: Bool, scope: CompressionScope, level: Int32 = RecordCompressor.defaultLevel) {
        self.scope = negotiated ? scope : .off
        self.acceptsCompressed = negotiated
        self.level = min(max(level, Self.levelRange.lowerBound), Self.levelRange.upperBound)
    }

    /// A link without compression (before establishment, or not negotiated).
    public static var disabled: RecordCompressor { RecordCompressor(negotiated: false, scope: .off) }

    /// Compresses the record payload that runs from `payloadStart` to the writer index of
    /// `buffer` in place, when allowed and worth it, and returns the record flags to seal with
    /// (`RecordFormat.flagCompressed` or 0). Call between `writePayload` and `finishRecord`.
    public mutating func compressPayload(in buffer: inout ByteBuffer, from payloadStart: Int, carriesPackets: Bool) -> UInt8 {
        let length = buffer.writerIndex - payloadStart
        counters.bytesBefore += UInt64(length)
        guard compressed(&buffer, from: payloadStart, length: length, carriesPackets: carriesPackets) else {
            counters.recordsUncompressed += 1
            counters.bytesAfter += UInt64(length)
            return 0
        }
        counters.recordsCompressed += 1
        counters.bytesAfter += UInt64(buffer.writerIndex - payloadStart)
        return RecordFormat.flagCompressed
    }

    private mutating func compressed(_ buffer: inout ByteBuffer, from payloadStart: Int, length: Int, carriesPackets: Bool) -> Bool {
        switch scope {
        case .off: return false
        case .streams: if carriesPackets { return false }
        case .all: break
        }
        guard length >= Self.minimumPayload, payloadStart >= buffer.readerIndex else { return false }
        if skipRemaining > 0 {
            skipRemaining -= 1
            return false
        }
        counters.attempts += 1
        let capacity = length - (length >> Self.minimumSavingShift)
        let offset = payloadStart - buffer.readerIndex
        let (context, level) = (context, level)
        let frameSize: Int? = buffer.withUnsafeMutableReadableBytes { all in
            let payload = UnsafeMutableRawBufferPointer(rebasing: all[offset..<(offset + length)])
            guard let frame = context.compress(UnsafeRawBufferPointer(payload), capacity: capacity, level: level),
                  let target = payload.baseAddress, let source = frame.baseAddress
            else { return nil }
            target.copyMemory(from: source, byteCount: frame.count)
            return frame.count
        }
        guard let frameSize else {
            skipRemaining = backoff
            backoff = min(backoff * 2, Self.maximumBackoff)
            return false
        }
        backoff = 1
        buffer.moveWriterIndex(to: payloadStart + frameSize)
        return true
    }

    /// The payload to hand to the session: `opened.payload` as is, or decompressed when the
    /// record is flagged. `limit` is our max record payload (what we advertised).
    public mutating func decompress(_ opened: RecordOpener.Opened, limit: Int) throws(RecordError) -> ByteBuffer {
        guard opened.flags & RecordFormat.flagCompressed != 0 else { return opened.payload }
        // PROTOCOL.md §4.2: flag 0x01 only when both hellos offered the feature.
        guard acceptsCompressed else { throw .unknownFlags(opened.flags) }
        let output: ByteBuffer
        do throws(Zstd.Failure) {
            output = try decompress(frame: opened.payload, limit: limit)
        } catch {
            throw .decompression(error)
        }
        counters.recordsDecompressed += 1
        counters.decompressedBytesIn += UInt64(opened.payload.readableBytes)
        counters.decompressedBytesOut += UInt64(output.readableBytes)
        return output
    }

    private func decompress(frame payload: ByteBuffer, limit: Int) throws(Zstd.Failure) -> ByteBuffer {
        let context = context
        let result: Result<ByteBuffer, Zstd.Failure> = payload.withUnsafeReadableBytes { frame in
            Result { () throws(Zstd.Failure) in
                switch try context.plan(frame, limit: limit) {
                case .declared(let size):
                    // Exactly the declared size (≤ limit): the bytes stay in this buffer, handed
                    // to the session as slices, so it cannot be a reused scratch.
                    var output = ByteBuffer()
                    output.reserveCapacity(size)
                    var failure: Zstd.Failure?
                    output.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { space in
                        do throws(Zstd.Failure) {
                            return try context.decompress(frame, into: UnsafeMutableRawBufferPointer(rebasing: space[0..<size]))
                        } catch {
                            failure = error
                            return 0
                        }
                    }
                    if let failure { throw failure }
                    return output
                case .unknown:
                    return ByteBuffer(bytes: try context.decompressUnknownSize(frame, limit: limit))
                }
            }
        }
        return try result.get()
    }

    /// Bytes held by the scratch buffer (tests: it never follows a frame's claim).
    var scratchCapacity: Int { context.scratchCapacity }
}
