import NIOCore
import Testing
@testable import BYSTProto

@Suite struct RecordTests {
    struct Pair {
        var sealer: RecordSealer
        var opener: RecordOpener
    }

    func makePair(_ algorithm: AEADAlgorithm = .aes256gcm, limits: RecordLimits = .init()) throws -> Pair {
        let key = try SecretBytes.random(count: 32)
        return Pair(sealer: try RecordSealer(algorithm: algorithm, key: key, limits: limits, peerMaxPayload: limits.maxPayload),
                    opener: try RecordOpener(algorithm: algorithm, key: key, limits: limits))
    }

    func payload(_ count: Int, seed: UInt8 = 1) -> ByteBuffer {
        var buffer = ByteBuffer()
        for i in 0..<count { buffer.writeInteger(UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed))) }
        return buffer
    }

    @Test(arguments: AEADAlgorithm.allCases, [0, 1, 1420, 16 * 1024, RecordLimits.defaultMaxPayload])
    func roundTrip(algorithm: AEADAlgorithm, size: Int) throws {
        var pair = try makePair(algorithm)
        var wire = ByteBuffer()
        try pair.sealer.seal(payload(size), into: &wire)
        #expect(wire.readableBytes == size + RecordFormat.overhead)
        let opened = try #require(try pair.opener.open(&wire))
        #expect(opened.payload == payload(size))
        #expect(wire.readableBytes == 0)
        try pair.opener.finish(wire)
    }

    @Test func manyRecordsArriveByteByByteAndInRandomSplits() throws {
        var pair = try makePair(.chacha20poly1305)
        var wire = ByteBuffer()
        let sizes = [0, 5, 300, 1, 4000, 64, 9000]
        for (i, size) in sizes.enumerated() { try pair.sealer.seal(payload(size, seed: UInt8(i)), into: &wire) }
        var inbound = ByteBuffer()
        var received: [ByteBuffer] = []
        var generator = SystemRandomNumberGenerator()
        while wire.readableBytes > 0 {
            let step = received.count % 2 == 0 ? 1 : Int.random(in: 1...700, using: &generator)
            var piece = wire.readSlice(length: min(step, wire.readableBytes)) ?? ByteBuffer()
            inbound.writeBuffer(&piece)
            while let record = try pair.opener.open(&inbound) { received.append(record.payload) }
        }
        #expect(received == sizes.enumerated().map { payload($1, seed: UInt8($0)) })
    }

    @Test func everyFlippedBitIsRejected() throws {
        let key = try SecretBytes.random(count: 32)
        var sealer = try RecordSealer(algorithm: .aes256gcm, key: key)
        var wire = ByteBuffer()
        try sealer.seal(payload(40), into: &wire)
        let bytes = Array(wire.readableBytesView)
        for index in bytes.indices {
            for bit in 0..<8 {
                var opener = try RecordOpener(algorithm: .aes256gcm, key: key)
                var tampered = bytes
                tampered[index] ^= 1 << bit
                var inbound = ByteBuffer(bytes: tampered)
                do {
                    // A flipped length bit may announce a longer record that never completes.
                    #expect(try opener.open(&inbound) == nil, "byte \(index) bit \(bit) accepted")
                    #expect(throws: RecordError.truncated) { try opener.finish(inbound) }
                } catch {
                    let expected: Bool
                    switch error {
                    case .authenticationFailed: expected = true
                    case .unknownFlags: expected = index == 0
                    case .tooLarge: expected = (1...3).contains(index)
                    default: expected = false
                    }
                    #expect(expected, "byte \(index) bit \(bit): \(error)")
                }
            }
        }
    }

    @Test func replayedAndReorderedRecordsFail() throws {
        var pair = try makePair()
        var first = ByteBuffer()
        var second = ByteBuffer()
        try pair.sealer.seal(payload(10, seed: 1), into: &first)
        try pair.sealer.seal(payload(10, seed: 2), into: &second)
        // Reorder: the second record first.
        var reordered = pair
        var inbound = second
        #expect(throws: RecordError.authenticationFailed) { try reordered.opener.open(&inbound) }
        // Replay: the first record twice.
        var replay = first
        _ = try pair.opener.open(&replay)
        var again = first
        #expect(throws: RecordError.authenticationFailed) { try pair.opener.open(&again) }
    }

    @Test func oversizeAndUnknownFlagsAndTruncationAreTypedErrors() throws {
        var pair = try makePair(limits: RecordLimits(maxPayload: 4096))
        var header = ByteBuffer()
        header.writeInteger(UInt32(4097))
        #expect(throws: RecordError.tooLarge(length: 4097, limit: 4096)) { try pair.opener.open(&header) }
        var flagged = ByteBuffer()
        flagged.writeInteger(UInt32(0x8000_0010))
        #expect(throws: RecordError.unknownFlags(0x80)) { try pair.opener.open(&flagged) }
        var out = ByteBuffer()
        #expect(throws: RecordError.payloadTooLarge(length: 4097, limit: 4096)) {
            try pair.sealer.seal(payload(4097), into: &out)
        }
        var wire = ByteBuffer()
        try pair.sealer.seal(payload(100), into: &wire)
        var partial = wire.getSlice(at: 0, length: 60) ?? ByteBuffer()
        #expect(try pair.opener.open(&partial) == nil)
        #expect(throws: RecordError.truncated) { try pair.opener.finish(partial) }
    }

    @Test func bothSidesRekeyInLockstep() throws {
        let key = try SecretBytes.random(count: 32)
        let limits = RecordLimits(rekeyAfterRecords: 3)
        var sealer = try RecordSealer(algorithm: .aes256gcm, key: key, limits: limits)
        var wire = ByteBuffer()
        for i in 0..<10 { try sealer.seal(payload(50, seed: UInt8(i)), into: &wire) }
        #expect(sealer.rekeyCount == 3)
        var stale = try RecordOpener(algorithm: .aes256gcm, key: key, limits: RecordLimits())
        var opener = try RecordOpener(algorithm: .aes256gcm, key: key, limits: limits)
        var copy = wire
        for i in 0..<10 {
            let opened = try #require(try opener.open(&wire))
            #expect(opened.payload == payload(50, seed: UInt8(i)))
        }
        // An opener that never rekeys fails at the first record after the first rekey.
        for _ in 0..<3 { _ = try stale.open(&copy) }
        #expect(throws: RecordError.authenticationFailed) { try stale.open(&copy) }
    }

    @Test func rekeyChangesTheKeyStream() throws {
        let key = try SecretBytes.random(count: 32)
        var rekeying = try RecordSealer(algorithm: .aes256gcm, key: key, limits: RecordLimits(rekeyAfterRecords: 1))
        var steady = try RecordSealer(algorithm: .aes256gcm, key: key, limits: RecordLimits())
        var a = ByteBuffer()
        var b = ByteBuffer()
        for _ in 0..<2 {
            try rekeying.seal(payload(32), into: &a)
            try steady.seal(payload(32), into: &b)
        }
        let recordSize = 32 + RecordFormat.overhead
        #expect(a.getBytes(at: 0, length: recordSize) == b.getBytes(at: 0, length: recordSize))
        #expect(a.getBytes(at: recordSize, length: recordSize) != b.getBytes(at: recordSize, length: recordSize))
        var opener = try RecordOpener(algorithm: .aes256gcm, key: key, limits: RecordLimits(rekeyAfterRecords: 1))
        #expect(try opener.open(&a)?.payload == payload(32))
        #expect(try opener.open(&a)?.payload == payload(32))
    }
}
