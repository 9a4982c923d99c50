import NIOCore
import Testing
@testable import BYSTProto

/// Record compression (PROTOCOL.md §4.2): round trips through seal and open, incompressible
/// data sent as is, bounded decompression, the skipping backoff, scopes.
@Suite struct CompressionTests {
    /// Log lines: what a forwarded text stream typically looks like.
    static func text(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var line = 0
        while bytes.count < count {
            bytes += Array("2026-11-27T10:\(10 + line % 50):\(10 + line % 49).\(100 + line % 900)Z INFO gateway request id=\(line &* 7919 % 100_003) path=/api/v1/orders/\(line % 977) status=200 bytes=\(line % 4096) duration_ms=\(line % 300)\n".utf8)
            line += 1
        }
        return Array(bytes.prefix(count))
    }

    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: count)
        for index in bytes.indices {
            // xorshift64*: incompressible to zstd, reproducible.
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            bytes[index] = UInt8(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 56)
        }
        return bytes
    }

    struct Link {
        var sealer: RecordSealer
        var opener: RecordOpener
        var sender: RecordCompressor
        var receiver: RecordCompressor
    }

    func makeLink(scope: CompressionScope = .streams, negotiated: Bool = true) throws -> Link {
        let key = try SecretBytes.random(count: 32)
        return Link(
            sealer: try RecordSealer(algorithm: .aes256gcm, key: key), opener: try RecordOpener(algorithm: .aes256gcm, key: key),
            sender: RecordCompressor(negotiated: negotiated, scope: scope),
            receiver: RecordCompressor(negotiated: negotiated, scope: scope))
    }

    /// Seals `payload` as the runtime does (compress between writing and sealing); returns
    /// the wire bytes.
    func seal(_ payload: [UInt8], on link: inout Link, packets: Bool = false) throws -> ByteBuffer {
        var wire = ByteBuffer()
        let mark = link.sealer.beginRecord(in: &wire)
        let start = wire.writerIndex
        wire.writeBytes(payload)
        let flags = link.sender.compressPayload(in: &wire, from: start, carriesPackets: packets)
        try link.sealer.finishRecord(mark, flags: flags, in: &wire)
        return wire
    }

    func open(_ wire: inout ByteBuffer, on link: inout Link) throws -> (flags: UInt8, wireLength: Int, payload: [UInt8]) {
        let record = try #require(try link.opener.open(&wire))
        let payload = try link.receiver.decompress(record, limit: RecordLimits.defaultMaxPayload)
        return (record.flags, record.payload.readableBytes, Array(payload.readableBytesView))
    }

    @Test func compressibleDataIsCompressedAndRoundTrips() throws {
        var link = try makeLink()
        let text = Self.text(60_000)
        var wire = try seal(text, on: &link)
        let opened = try open(&wire, on: &link)
        #expect(opened.flags == RecordFormat.flagCompressed)
        #expect(opened.wireLength < text.count / 4, "\(opened.wireLength) bytes for \(text.count)")
        #expect(opened.payload == text)
        #expect(link.sender.counters.recordsCompressed == 1)
        #expect(link.sender.counters.ratio < 0.25)
        #expect(link.receiver.counters.recordsDecompressed == 1)
        #expect(link.receiver.counters.decompressedBytesOut == UInt64(text.count))
    }

    @Test func randomDataIsSentUncompressed() throws {
        var link = try makeLink()
        let random = Self.random(65_000, seed: 42)
        var wire = try seal(random, on: &link)
        let opened = try open(&wire, on: &link)
        // Not flagged, the original bytes, the original length: sent as is.
        #expect(opened.flags == 0)
        #expect(opened.wireLength == random.count)
        #expect(opened.payload == random)
        #expect(link.sender.counters.attempts == 1)
        #expect(link.sender.counters.recordsCompressed == 0)
        #expect(link.sender.counters.recordsUncompressed == 1)
        #expect(link.sender.counters.ratio == 1)
    }

    @Test func manyRecordsInOneBufferRoundTrip() throws {
        var link = try makeLink()
        var wire = ByteBuffer()
        let payloads = (0..<20).map { $0 % 3 == 0 ? Self.random(3000 + $0, seed: UInt64($0 + 1)) : Self.text(5000 + $0 * 100) }
        for payload in payloads { wire.writeImmutableBuffer(try seal(payload, on: &link)) }
        for payload in payloads { #expect(try open(&wire, on: &link).payload == payload) }
        #expect(wire.readableBytes == 0)
    }

    @Test func smallPayloadsAreNeverTried() throws {
        var link = try makeLink()
        var wire = try seal(Array(repeating: 0x41, count: RecordCompressor.minimumPayload - 1), on: &link)
        #expect(try open(&wire, on: &link).flags == 0)
        #expect(link.sender.counters.attempts == 0)
    }

    @Test func scopesDecideWhichRecordsAreCompressed() throws {
        let text = Self.text(8000)
        // streams: records with packet frames go out as they are, without even trying.
        var streams = try makeLink(scope: .streams)
        var packetRecord = try seal(text, on: &streams, packets: true)
        #expect(try open(&packetRecord, on: &streams).flags == 0)
        #expect(streams.sender.counters.attempts == 0)
        var streamRecord = try seal(text, on: &streams)
        #expect(try open(&streamRecord, on: &streams).flags == RecordFormat.flagCompressed)
        // all: packets too.
        var all = try makeLink(scope: .all)
        var packets = try seal(text, on: &all, packets: true)
        #expect(try open(&packets, on: &all).flags == RecordFormat.flagCompressed)
        // off, or not negotiated: nothing.
        for link in [try makeLink(scope: .off), try makeLink(scope: .all, negotiated: false)] {
            var link = link
            var record = try seal(text, on: &link)
            #expect(try open(&record, on: &link).flags == 0)
            #expect(link.sender.counters.attempts == 0)
        }
        #expect(RecordCompressor(negotiated: false, scope: .all).scope == .off)
    }

    @Test func aCompressedRecordOnALinkThatDidNotNegotiateIsRejected() throws {
        var link = try makeLink()
        link.receiver = RecordCompressor(negotiated: false, scope: .off)
        var wire = try seal(Self.text(8000), on: &link)
        #expect(throws: RecordError.unknownFlags(RecordFormat.flagCompressed)) { try open(&wire, on: &link) }
    }

    // MARK: Bounded decompression

    /// Seals `payload` (already a zstd frame, or garbage) flagged as compressed, opens it and
    /// decompresses it with `limit`.
    func receiveFlagged(_ payload: [UInt8], limit: Int, receiver: inout RecordCompressor) throws -> ByteBuffer {
        let key = try SecretBytes.random(count: 32)
        var sealer = try RecordSealer(algorithm: .aes256gcm, key: key)
        var opener = try RecordOpener(algorithm: .aes256gcm, key: key)
        var wire = ByteBuffer()
        try sealer.seal(ByteBuffer(bytes: payload), flags: RecordFormat.flagCompressed, into: &wire)
        let record = try #require(try opener.open(&wire))
        return try receiver.decompress(record, limit: limit)
    }

    /// A zstd frame header: magic, then the frame header descriptor.
    static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    /// A raw-block header: last flag, type 0 (raw), size.
    static func rawBlock(_ bytes: [UInt8], last: Bool) -> [UInt8] {
        let header = UInt32(last ? 1 : 0) | UInt32(bytes.count) << 3
        return [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF)] + bytes
    }

    /// An RLE block: `size` copies of `byte` from 4 bytes of input.
    static func rleBlock(byte: UInt8, size: Int, last: Bool) -> [UInt8] {
        let header = UInt32(last ? 1 : 0) | 1 << 1 | UInt32(size) << 3
        return [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF), byte]
    }

    @Test func aFrameDeclaringAHugeSizeIsRejectedBeforeAnyAllocation() throws {
        // Descriptor 0xE0: single segment, 8-byte content size = 2^40 (1 TiB); one tiny block.
        var frame = Self.magic + [0xE0]
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { frame += $0 }
        frame += Self.rawBlock([1, 2, 3], last: true)
        var receiver = RecordCompressor(negotiated: true, scope: .streams)
        #expect(throws: RecordError.decompression(.exceedsLimit(65536))) {
            try receiveFlagged(frame, limit: 65536, receiver: &receiver)
        }
        // Nothing was allocated for it: not even the scratch.
        #expect(receiver.scratchCapacity == 0)
        #expect(receiver.counters.recordsDecompressed == 0)
    }

    @Test func aRealBombWithItsSizeDeclaredIsRejected() throws {
        // 2 MiB of zeros, compressed by zstd itself: a ~100-byte record claiming 2 MiB.
        var sender = RecordCompressor(negotiated: true, scope: .all)
        var zeros = ByteBuffer(repeating: 0, count: 2 << 20)
        let flags = sender.compressPayload(in: &zeros, from: 0, carriesPackets: false)
        #expect(flags == RecordFormat.flagCompressed)
        #expect(zeros.readableBytes < 1024)
        var receiver = RecordCompressor(negotiated: true, scope: .streams)
        #expect(throws: RecordError.decompression(.exceedsLimit(65536))) {
            try receiveFlagged(Array(zeros.readableBytesView), limit: 65536, receiver: &receiver)
        }
        #expect(receiver.scratchCapacity == 0)
    }

    @Test func aFrameOfUnknownSizeExpandingPastTheLimitIsRejected() throws {
        // Descriptor 0x00: no content size, a window descriptor (0x38: 128 KiB window), then
        // 9 RLE blocks of 128 KiB: 42 bytes that expand to 1.1 MiB.
        var frame = Self.magic + [0x00, 0x38]
        for index in 0..<9 { frame += Self.rleBlock(byte: 0x5A, size: 128 << 10, last: index == 8) }
        #expect(frame.count < 64)
        var receiver = RecordCompressor(negotiated: true, scope: .streams)
        #expect(throws: RecordError.decompression(.exceedsLimit(65536))) {
            try receiveFlagged(frame, limit: 65536, receiver: &receiver)
        }
        // Decompression stopped at the limit: the scratch is the limit, not the frame's 1.1 MiB.
        #expect(receiver.scratchCapacity == 65536)
        // The same frame within a large enough limit decompresses: it is a valid frame.
        let limit = RecordLimits.upperMaxPayload + (128 << 10)
        let all = try receiveFlagged(frame, limit: limit, receiver: &receiver)
        #expect(all.readableBytes == 9 * (128 << 10))
        #expect(all.readableBytesView.allSatisfy { $0 == 0x5A })
    }

    @Test func corruptFramesAreErrors() throws {
        var receiver = RecordCompressor(negotiated: true, scope: .streams)
        func rejects(_ payload: [UInt8], _ label: String) {
            do {
                _ = try receiveFlagged(payload, limit: 65536, receiver: &receiver)
                Issue.record("\(label): accepted")
            } catch RecordError.decompression(.corrupt) {
            } catch {
                Issue.record("\(label): \(error)")
            }
        }
        rejects([], "empty payload")
        rejects(Self.random(1000, seed: 5), "no magic")
        // A valid frame, then flipped content or a truncated tail or bytes after it.
        var sender = RecordCompressor(negotiated: true, scope: .all)
        var text = ByteBuffer(bytes: Self.text(20_000))
        let flags = sender.compressPayload(in: &text, from: 0, carriesPackets: false)
        #expect(flags == RecordFormat.flagCompressed)
        let frame = Array(text.readableBytesView)
        #expect(try receiveFlagged(frame, limit: 65536, receiver: &receiver).readableBytesView.elementsEqual(Self.text(20_000)))
        var flipped = frame
        for index in stride(from: 12, to: frame.count, by: 7) { flipped[index] ^= 0xFF }
        rejects(flipped, "flipped")
        rejects(Array(frame.dropLast(5)), "truncated")
        rejects(frame + [0], "trailing byte")
        rejects(frame + frame, "two frames")
        // A raw block with no content-size field: the declared and unknown paths both check.
        rejects(Self.magic + [0x00, 0x38] + Array(Self.rawBlock([1, 2, 3, 4], last: true).dropLast(2)), "short raw block")
    }

    // MARK: Skipping incompressible data

    @Test func incompressibleRecordsBackOffAndCompressionResumes() throws {
        var link = try makeLink()
        // 300 random records: attempts at records 1, 3, 6, 11, 20, 37, 70, 135, 200, 265, then
        // one in 65 (skip 1, 2, 4 … 64 after each miss).
        for index in 0..<300 {
            var wire = try seal(Self.random(16_384, seed: UInt64(index + 1)), on: &link)
            #expect(try open(&wire, on: &link).flags == 0)
        }
        #expect(link.sender.counters.attempts == 10)
        #expect(link.sender.backoff == RecordCompressor.maximumBackoff)
        #expect(link.sender.counters.recordsUncompressed == 300)
        // Compressible data returns: noticed within the current skip (≤ 64 records), and
        // from the first success on, every record is compressed again.
        var firstCompressed: Int?
        for index in 0..<100 {
            var wire = try seal(Self.text(16_384 + index), on: &link)
            let opened = try open(&wire, on: &link)
            if opened.flags == RecordFormat.flagCompressed, firstCompressed == nil { firstCompressed = index }
            if let firstCompressed, index >= firstCompressed { #expect(opened.flags == RecordFormat.flagCompressed) }
            #expect(opened.payload == Self.text(16_384 + index))
        }
        let first = try #require(firstCompressed)
        #expect(first <= RecordCompressor.maximumBackoff)
        #expect(link.sender.backoff == 1)
        #expect(link.sender.counters.recordsCompressed == UInt64(100 - first))
    }

    @Test func sessionMachineCountsPacketFrames() throws {
        var machine = SessionMachine(role: .initiator, now: 0)
        machine.linkUp(LinkID(1), now: 0)
        for size in [100, 200, 300] {
            let queued = machine.sendPacket(ByteBuffer(repeating: 0x45, count: size), flowHash: 0)
            #expect(queued)
        }
        var out = ByteBuffer()
        var packetFrames = -1
        var written = machine.writePayload(for: LinkID(1), maxBytes: 65536, into: &out, packetFrames: &packetFrames)
        #expect(written > 600)
        #expect(packetFrames == 3)
        // Stream data only: no packet frames.
        let opened = machine.openStream(target: "db:5432")
        let stream = try #require(opened)
        var data = ByteBuffer(bytes: Self.text(1000))
        let accepted = machine.send(&data, on: stream)
        #expect(accepted == 1000)
        out.clear()
        written = machine.writePayload(for: LinkID(1), maxBytes: 65536, into: &out, packetFrames: &packetFrames)
        #expect(written > 1000)
        #expect(packetFrames == 0)
    }
}
