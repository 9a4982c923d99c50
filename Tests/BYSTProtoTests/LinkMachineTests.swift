import NIOCore
import Testing
@testable import BYSTProto

/// The whole link protocol as one value (LinkMachine.swift): two machines with real keys,
/// handshake and records however the bytes are cut, and the cause of every way a link ends.
@Suite struct LinkMachineTests {
    static let now: UInt64 = 1_800_000_000 * 1_000_000_000
    let psk: PreSharedKey
    let other: PreSharedKey

    init() throws {
        psk = try PreSharedKey.generate()
        other = try PreSharedKey.generate()
    }

    /// One end of a link with what its driver keeps: keys, replay filter, compression setting,
    /// and what the machine delivered.
    struct End {
        var machine: LinkMachine
        var keys: [KeyID: PreSharedKey] = [:]
        var filter = HandshakeReplayFilter()
        var scope = CompressionScope.off
        var now = LinkMachineTests.now
        var peer: LinkMachine.Peer?
        var received: [[UInt8]] = []

        /// Feeds `bytes` and runs the machine until it needs more; returns what it wants written.
        mutating func feed(_ bytes: ByteBuffer) throws(LinkMachine.Failure) -> ByteBuffer {
            var bytes = bytes
            machine.receive(&bytes)
            var output = ByteBuffer()
            let keys = self.keys
            while let event = try machine.next(now: now, keys: { keys[$0] }, replayFilter: &filter, into: &output) {
                switch event {
                case .established(let peer):
                    #expect(self.peer == nil, "established twice")
                    self.peer = peer
                    machine.setCompression(scope)
                case .record(let payload):
                    #expect(self.peer != nil, "a record before the link was established")
                    received.append(Array(payload.readableBytesView))
                }
            }
            return output
        }

        mutating func start() throws(LinkMachine.Failure) -> ByteBuffer {
            var output = ByteBuffer()
            try machine.start(into: &output)
            return output
        }

        /// Seals `payloads` into one buffer, as a driver batches records into one write.
        mutating func seal(_ payloads: [[UInt8]], carriesPackets: Bool = false) throws(LinkMachine.Failure) -> ByteBuffer {
            var out = ByteBuffer()
            for payload in payloads {
                guard let mark = machine.beginRecord(in: &out) else { throw .notEstablished }
                out.writeBytes(payload)
                try machine.finishRecord(mark, carriesPackets: carriesPackets, in: &out)
            }
            return out
        }
    }

    func initiator(key: PreSharedKey? = nil, name: String = "branch-1", suite: AEADAlgorithm = .aes256gcm,
                   limits: RecordLimits = .init(), timestamp: UInt64 = now, scope: CompressionScope = .off) -> End {
        let hello = LinkHello(timestamp: timestamp, sessionID: Array(repeating: 0xAB, count: 16), linkIndex: 3,
                              features: [.compression, .gsoPackets], maxRecordPayload: UInt32(limits.maxPayload), nodeName: name)
        return End(machine: LinkMachine(initiator: LinkInitiator(psk: key ?? psk, suite: suite, hello: hello, limits: limits)),
                   scope: scope)
    }

    func responder(features: LinkFeatures = [.compression], limits: RecordLimits = .init(), scope: CompressionScope = .off,
                   keys: [PreSharedKey]? = nil) -> End {
        let local = LinkResponder.Local(nodeName: "hub", features: features, limits: limits)
        let table = Dictionary(uniqueKeysWithValues: (keys ?? [psk]).map { ($0.id, $0) })
        return End(machine: LinkMachine(responder: LinkResponder(local: local)), keys: table, scope: scope)
    }

    /// Both ends established over whole-buffer delivery; the responder has opened the first record.
    func established(_ a: End? = nil, _ b: End? = nil) throws -> (End, End) {
        var a = a ?? initiator()
        var b = b ?? responder()
        let wire2 = try b.feed(try a.start())
        let firstRecord = try a.feed(wire2)
        #expect(try b.feed(firstRecord).readableBytes == 0)
        #expect(a.peer != nil && b.peer != nil)
        return (a, b)
    }

    /// Cuts `bytes` into pieces of `sizes()` bytes each.
    static func pieces(_ bytes: ByteBuffer, sizes: () -> Int) -> [ByteBuffer] {
        var rest = bytes
        var pieces: [ByteBuffer] = []
        while rest.readableBytes > 0 {
            let size = min(max(sizes(), 1), rest.readableBytes)
            if let piece = rest.readSlice(length: size) { pieces.append(piece) }
        }
        return pieces
    }

    /// Payloads of mixed sizes: empty, tiny, compressible text, random bytes.
    static func payloads(count: Int, using generator: inout SplitMix64) -> [[UInt8]] {
        (0..<count).map { index in
            let size = [0, 1, 100, 300, 4000, 20_000][index % 6]
            if index % 2 == 0 { return Array(String(repeating: "stream bytes \(index) ", count: size / 16 + 1).utf8.prefix(size)) }
            return (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
    }

    // MARK: Handshake and records however the bytes arrive

    /// The whole conversation: message 1, message 2, the first record with records behind it,
    /// then records the other way; every buffer delivered in pieces of `sizes()` bytes.
    func converse(sizes: () -> Int, seed: UInt64, suite: AEADAlgorithm = .aes256gcm) throws {
        // Rekeys every 7 records, so the records cross several keys in lockstep.
        let limits = RecordLimits(rekeyAfterRecords: 7)
        var a = initiator(suite: suite, limits: limits, scope: .all)
        var b = responder(limits: limits, scope: .streams)
        var generator = SplitMix64(seed: seed)
        let up = Self.payloads(count: 30, using: &generator)
        let down = Self.payloads(count: 24, using: &generator)

        var wire2 = ByteBuffer()
        for piece in Self.pieces(try a.start(), sizes: sizes) {
            #expect(wire2.readableBytes == 0, "message 2 before message 1 was complete")
            var out = try b.feed(piece)
            wire2.writeBuffer(&out)
        }
        #expect(b.peer == nil, "the responder committed before the first record")
        var upstream = ByteBuffer()
        for piece in Self.pieces(wire2, sizes: sizes) {
            var out = try a.feed(piece)
            upstream.writeBuffer(&out)
        }
        #expect(a.peer?.hello.nodeName == "hub")
        #expect(a.peer?.features == [.compression])
        // The initiator's first record is the empty one (PROTOCOL.md §3.5), then ours.
        #expect(a.machine.recordsSealed == 1)
        var records = try a.seal(up)
        upstream.writeBuffer(&records)
        for piece in Self.pieces(upstream, sizes: sizes) { #expect(try b.feed(piece).readableBytes == 0) }
        #expect(b.peer?.hello.nodeName == "branch-1")
        #expect(b.peer?.keyID == psk.id)
        #expect(b.peer?.suite == suite)
        #expect(b.received == [[]] + up)

        let downstream = try b.seal(down)
        for piece in Self.pieces(downstream, sizes: sizes) { #expect(try a.feed(piece).readableBytes == 0) }
        #expect(a.received == down)
        #expect(a.machine.unreadBytes == 0 && b.machine.unreadBytes == 0)
        // `all` compressed the compressible records up, `streams` those down (none carry packets).
        #expect(a.machine.compressionCounters.recordsCompressed > 0)
        #expect(b.machine.compressionCounters.recordsCompressed > 0)
        #expect(b.machine.compressionCounters.recordsDecompressed == a.machine.compressionCounters.recordsCompressed)
        #expect(a.machine.compressionCounters.recordsDecompressed == b.machine.compressionCounters.recordsCompressed)
    }

    @Test(arguments: AEADAlgorithm.allCases)
    func wholeBuffers(suite: AEADAlgorithm) throws {
        try converse(sizes: { Int.max }, seed: 1, suite: suite)
    }

    @Test func dripFedOneByteAtATime() throws {
        try converse(sizes: { 1 }, seed: 2)
    }

    @Test(arguments: [3, 17, 99, 2024, 0xB757] as [UInt64])
    func randomSplits(seed: UInt64) throws {
        var cuts = SplitMix64(seed: seed &* 31)
        // Mostly small pieces, some large: cuts inside headers, tags and across records.
        let tops = [1, 3, 40, 700, 9000]
        try converse(sizes: { Int.random(in: 1...tops[Int(cuts.next() % 5)], using: &cuts) }, seed: seed)
    }

    @Test func establishedCarriesWhatTheDriversNeed() throws {
        let (a, b) = try established()
        #expect(a.machine.isInitiator && !b.machine.isInitiator)
        #expect(a.machine.keyID == psk.id && b.machine.keyID == psk.id)
        #expect(b.peer?.hello.linkIndex == 3)
        #expect(b.peer?.hello.sessionID == Array(repeating: 0xAB, count: 16))
        #expect(a.peer?.hello.linkIndex == 3)
        // Offloaded packets only where both offered them.
        #expect(b.peer?.features == [.compression] && a.peer?.features == [.compression])
        #expect(a.machine.peerMaxPayload == RecordLimits.defaultMaxPayload)
        #expect(a.machine.isEstablished && b.machine.isEstablished)
    }

    @Test func compressionIsOnlyWhatBothOfferedAndOurSettingAllows() throws {
        // The responder offers no compression: `all` on the initiator compresses nothing.
        var (a, b) = try established(initiator(scope: .all), responder(features: []))
        #expect(a.machine.compressionScope == .off)
        let text = Array(String(repeating: "compressible ", count: 200).utf8)
        _ = try b.feed(try a.seal([text]))
        #expect(b.received.last == text)
        #expect(a.machine.compressionCounters.recordsCompressed == 0)
        // `streams` leaves records with packets as they are.
        (a, b) = try established(initiator(scope: .streams), responder())
        _ = try b.feed(try a.seal([text], carriesPackets: true))
        _ = try b.feed(try a.seal([text]))
        #expect(b.received.suffix(2) == [text, text])
        #expect(a.machine.compressionCounters.recordsCompressed == 1)
        #expect(a.machine.compressionCounters.recordsUncompressed == 1)
    }

    /// The hot paths copy nothing: records are sealed where the caller's buffer has room, and
    /// opened where they arrived, in a buffer that is never copied while payloads are let go.
    @Test func recordsAreSealedAndOpenedInPlace() throws {
        var (a, b) = try established()
        var wire = ByteBuffer()
        wire.reserveCapacity(64 * 1024)
        let sealedIn = wire.withVeryUnsafeBytes { $0.baseAddress }
        for index in 0..<40 {
            let mark = try #require(a.machine.beginRecord(in: &wire))
            wire.writeRepeatingByte(UInt8(index), count: 1000)
            try a.machine.finishRecord(mark, carriesPackets: true, in: &wire)
        }
        #expect(wire.withVeryUnsafeBytes { $0.baseAddress } == sealedIn)
        b.machine.receive(&wire)
        let storage = b.machine.inbound.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress)..<UInt(bitPattern: $0.baseAddress) + UInt($0.count) }
        var output = ByteBuffer()
        var opened = 0
        while case .record(let payload)? = try b.machine.next(now: Self.now, keys: { _ in nil }, replayFilter: &b.filter, into: &output) {
            payload.withUnsafeReadableBytes { #expect(storage.contains(UInt(bitPattern: $0.baseAddress)), "record \(opened) was copied") }
            #expect(payload.readableBytes == 1000 && payload.getInteger(at: payload.readerIndex, as: UInt8.self) == UInt8(opened))
            opened += 1
        }
        #expect(opened == 40)
        #expect(b.machine.inbound.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == storage.lowerBound)
    }

    // MARK: Hand-off

    /// The data plane's share: one value with the opener, sealer and unread bytes; the loop's
    /// machine keeps the peer and compression.
    @Test func handOffMovesTheRecordLayerAndTheUnreadBytes() throws {
        var (a, b) = try established(initiator(scope: .all), responder(scope: .streams))
        let text = Array(String(repeating: "handed off ", count: 100).utf8)
        var unread = try a.seal([text, [1, 2, 3]])
        b.machine.receive(&unread)
        let handedOff = b.machine.handOff()
        var plane = try #require(handedOff)
        let again = b.machine.handOff()
        #expect(again == nil)
        #expect(b.machine.isEstablished && b.machine.unreadBytes == 0)
        #expect(plane.unreadBytes > 0)
        var scratch = ByteBuffer()
        #expect(b.machine.beginRecord(in: &scratch) == nil)
        #expect(throws: LinkMachine.Failure.notEstablished) { try b.machine.openRecord() }
        // The plane opens; a flagged record goes back to the loop's machine to decompress.
        let opened = try plane.openRecord()
        let compressed = try #require(opened)
        #expect(compressed.flags == RecordFormat.flagCompressed)
        #expect(Array(try b.machine.payload(of: compressed).readableBytesView) == text)
        #expect(try plane.openRecord()?.payload == ByteBuffer(bytes: [1, 2, 3]))
        #expect(try plane.openRecord() == nil)
        // The loop lays the record out and compresses it; the plane seals it where it lies.
        var records = LaidOutRecords(capacity: 1024)
        let header = records.beginRecord()
        records.buffer.writeBytes(text)
        b.machine.layOutRecord(at: header, in: &records, carriesPackets: false)
        let span = try #require(records.spans.first)
        #expect(span.flags == RecordFormat.flagCompressed && span.payloadLength < text.count)
        try plane.seal(&records)
        var wire = records.buffer
        let begun = plane.beginRecord(in: &wire)
        let mark = try #require(begun)
        wire.writeBytes([9, 9])
        try plane.finishRecord(mark, carriesPackets: true, in: &wire)
        _ = try a.feed(wire)
        #expect(a.received == [text, [9, 9]])
    }

    // MARK: Every way a link fails, with its cause

    /// Feeds `bytes` to `end` and returns the failure it must report; the machine is closed after.
    func failure(_ end: inout End, _ bytes: ByteBuffer) -> LinkMachine.Failure? {
        do throws(LinkMachine.Failure) {
            let output = try end.feed(bytes)
            Issue.record("no failure; wrote \(output.readableBytes) bytes")
            return nil
        } catch {
            #expect(end.machine.isClosed)
            return error
        }
    }

    @Test func aWrongPSKFailsMessage1sTag() throws {
        var a = initiator(key: other)
        var b = responder()
        b.keys = [other.id: psk]  // the id names a different secret here
        #expect(failure(&b, try a.start()) == .handshake(.authenticationFailed))
        #expect(b.filter.count == 0)
    }

    /// Key-id oracle: an unknown id is read to the end of message 1 before the refusal.
    @Test func anUnknownKeyIDIsRefusedOnlyWhenMessage1IsComplete() throws {
        var a = initiator(key: other)
        var b = responder()
        var wire1 = try a.start()
        while wire1.readableBytes > 1, let byte = wire1.readSlice(length: 1) {
            #expect(try b.feed(byte).readableBytes == 0)
        }
        #expect(failure(&b, wire1) == .handshake(.unknownKeyID(other.id)))
    }

    @Test func aReflectedHelloIsRefused() throws {
        var a = initiator(name: "hub")  // our own name: our message 1 turned back to us
        var b = responder()
        #expect(failure(&b, try a.start()) == .handshake(.reflected))
    }

    @Test func aReplayedMessage1IsRefused() throws {
        var a = initiator()
        var b = responder()
        let wire1 = try a.start()
        #expect(try b.feed(wire1).readableBytes > 0)
        var again = responder()
        again.filter = b.filter
        again.now += 1_000_000_000
        #expect(failure(&again, wire1) == .handshake(.replayed))
    }

    @Test func aClockOutsideTheWindowIsRefused() throws {
        var a = initiator(timestamp: Self.now - 121_000_000_000)
        var b = responder()
        #expect(failure(&b, try a.start()) == .handshake(.timestampOutsideWindow(skewNanoseconds: -121_000_000_000)))
    }

    @Test func garbageIsRefused() throws {
        var b = responder()
        #expect(failure(&b, ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .handshake(.badMagic))
        var a = initiator()
        _ = try a.start()
        #expect(failure(&a, ByteBuffer(bytes: [0xFF, 0xFF, 0x00])) == .handshake(.messageTooLarge(0xFFFF)))
        // Nothing may arrive before we sent message 1.
        var early = initiator()
        #expect(failure(&early, ByteBuffer(bytes: [0x00])) == .handshake(.unexpectedMessage))
    }

    @Test func aTruncatedMessageThenCloseIsTruncated() throws {
        var a = initiator()
        var b = responder()
        let wire1 = try a.start()
        #expect(try b.feed(try #require(wire1.getSlice(at: 0, length: wire1.readableBytes - 1))).readableBytes == 0)
        #expect(b.machine.connectionClosed() == .handshake(.truncated))
        #expect(b.machine.isClosed)
        // A responder closed after message 2, before the first record: still the handshake.
        var c = responder()
        #expect(try c.feed(wire1).readableBytes > 0)
        #expect(c.machine.connectionClosed() == .handshake(.truncated))
        // An initiator that never started ends quietly.
        var idle = initiator()
        #expect(idle.machine.connectionClosed() == nil)
    }

    @Test func aCloseInsideARecordIsTruncatedAndBetweenRecordsIsClean() throws {
        var (a, b) = try established()
        let record = try a.seal([[1, 2, 3, 4]])
        #expect(try b.feed(try #require(record.getSlice(at: 0, length: 10))).readableBytes == 0)
        #expect(b.machine.connectionClosed() == .record(.truncated))
        #expect(a.machine.connectionClosed() == nil)
    }

    @Test func anOversizeRecordHeaderIsRefusedAsSoonAsItArrives() throws {
        var (_, b) = try established()
        let length = RecordLimits.defaultMaxPayload + 1
        let header = ByteBuffer(bytes: [0x00, UInt8(length >> 16), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)])
        #expect(failure(&b, header) == .record(.tooLarge(length: length, limit: RecordLimits.defaultMaxPayload)))
    }

    @Test func aBadTagClosesTheLink() throws {
        var (a, b) = try established()
        var record = try a.seal([[1, 2, 3, 4]])
        let last = record.writerIndex - 1
        record.setInteger((record.getInteger(at: last, as: UInt8.self) ?? 0) ^ 0x01, at: last)
        #expect(failure(&b, record) == .record(.authenticationFailed))
        // Closed for good: nothing opens or seals any more.
        var out = ByteBuffer()
        #expect(b.machine.beginRecord(in: &out) == nil)
        #expect(throws: LinkMachine.Failure.closed) { try b.machine.openRecord() }
    }

    @Test func recordsBeforeTheHandshakeCompletedAreRefused() throws {
        let (other1, _) = try established()
        var sender = other1
        let record = try sender.seal([[1, 2, 3]])
        // Instead of message 1: not a BYST handshake.
        var b = responder()
        #expect(failure(&b, record) == .handshake(.badMagic))
        // Instead of message 2: its first two bytes read as a Noise message of length 0.
        var a = initiator()
        _ = try a.start()
        #expect(failure(&a, record) == .handshake(.malformedHello("handshake message shorter than its keys and tag")))
        // Instead of the first record: message 1 again, whose magic reads as unknown flags.
        var c = responder()
        var d = initiator()
        let wire1 = try d.start()
        #expect(try c.feed(wire1).readableBytes > 0)
        #expect(failure(&c, wire1) == .record(.unknownFlags(0x42)))
        // Our side: nothing is sealed or opened before the link is established.
        var e = initiator()
        var out = ByteBuffer()
        #expect(e.machine.beginRecord(in: &out) == nil)
        #expect(throws: LinkMachine.Failure.notEstablished) { try e.machine.seal(ByteBuffer(), flags: 0, into: &out) }
        #expect(throws: LinkMachine.Failure.notEstablished) { try e.machine.openRecord() }
        #expect(out.readableBytes == 0)
    }

    @Test func aRecordThatInflatesPastOurLimitIsRefused() throws {
        var (a, b) = try established(initiator(scope: .all), responder(limits: RecordLimits(maxPayload: 4096)))
        #expect(a.machine.peerMaxPayload == 4096)
        // 16 KiB of zeros shrink to a few bytes, under the limit as sent.
        let bomb = try a.seal([[UInt8](repeating: 0, count: 16 * 1024)])
        #expect(bomb.readableBytes < 200)
        #expect(failure(&b, bomb) == .record(.decompression(.exceedsLimit(4096))))
    }

    @Test func theCompressedFlagWithoutTheFeatureIsRefused() throws {
        var (a, b) = try established(initiator(), responder(features: []))
        var wire = ByteBuffer()
        try a.machine.seal(ByteBuffer(string: "not zstd"), flags: RecordFormat.flagCompressed, into: &wire)
        #expect(failure(&b, wire) == .record(.unknownFlags(RecordFormat.flagCompressed)))
    }

    @Test func aPayloadOverThePeersLimitIsNotSealed() throws {
        var (a, _) = try established(initiator(), responder(limits: RecordLimits(maxPayload: 4096)))
        #expect(throws: LinkMachine.Failure.record(.payloadTooLarge(length: 4097, limit: 4096))) {
            try a.seal([[UInt8](repeating: 7, count: 4097)])
        }
        #expect(a.machine.isClosed)
    }

    @Test func sealingAfterCloseIsRefused() throws {
        var (a, _) = try established()
        var out = ByteBuffer()
        let begun = a.machine.beginRecord(in: &out)
        let mark = try #require(begun)
        out.writeBytes([1, 2, 3])
        a.machine.close()
        #expect(throws: LinkMachine.Failure.closed) { try a.machine.finishRecord(mark, carriesPackets: false, in: &out) }
        #expect(throws: LinkMachine.Failure.closed) { try a.machine.seal(ByteBuffer(), flags: 0, into: &out) }
        #expect(a.machine.beginRecord(in: &out) == nil)
        #expect(throws: LinkMachine.Failure.closed) { try a.machine.openRecord() }
        // What arrives after the close is dropped, and no event comes.
        #expect(try a.feed(ByteBuffer(bytes: [1, 2, 3, 4, 5])).readableBytes == 0)
        #expect(a.machine.unreadBytes == 0)
        #expect(a.machine.isEstablished == false)
    }
}
