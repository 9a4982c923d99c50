import NIOCore
import Testing
@testable import BYSTProto

/// The BYST link handshake (PROTOCOL.md §3) driven machine against machine.
@Suite struct LinkHandshakeTests {
    static let now: UInt64 = 1_800_000_000 * 1_000_000_000
    let psk: PreSharedKey
    let other: PreSharedKey

    init() throws {
        psk = try PreSharedKey.generate()
        other = try PreSharedKey.generate()
    }

    func hello(timestamp: UInt64 = LinkHandshakeTests.now, linkIndex: UInt16 = 2) -> LinkHello {
        LinkHello(timestamp: timestamp, sessionID: Array(repeating: 0xAB, count: 16), linkIndex: linkIndex,
                  features: [.compression, .gsoPackets], maxRecordPayload: 65536, nodeName: "branch-1")
    }

    func responder() -> LinkResponder {
        LinkResponder(local: .init(nodeName: "hub", features: [.compression]))
    }

    func lookup(_ keys: [PreSharedKey]) -> (KeyID) -> PreSharedKey? {
        { id in keys.first { $0.id == id } }
    }

    /// Message 1 from a fresh initiator.
    func message1(suite: AEADAlgorithm = .aes256gcm, key: PreSharedKey? = nil, timestamp: UInt64 = now)
        throws -> (LinkInitiator, ByteBuffer) {
        var initiator = LinkInitiator(psk: key ?? psk, suite: suite, hello: hello(timestamp: timestamp))
        var out = ByteBuffer()
        try initiator.start(into: &out)
        return (initiator, out)
    }

    @Test(arguments: AEADAlgorithm.allCases)
    func rightKeySucceedsBothWaysAndRecordsFlow(suite: AEADAlgorithm) throws {
        var (initiator, wire1) = try message1(suite: suite)
        var resp = responder()
        var filter = HandshakeReplayFilter()
        var wire2 = ByteBuffer()
        var atResponder = try #require(try resp.receive(&wire1, now: Self.now + 5_000_000, keys: lookup([other, psk]),
                                                        replayFilter: &filter, into: &wire2))
        #expect(wire1.readableBytes == 0)
        #expect(atResponder.peerHello == hello())
        #expect(atResponder.keyID == psk.id)
        #expect(atResponder.features == [.compression])
        var atInitiator = try #require(try initiator.receive(&wire2))
        #expect(atInitiator.peerHello.nodeName == "hub")
        #expect(atInitiator.peerHello.sessionID == hello().sessionID)
        #expect(atInitiator.features == [.compression])
        #expect(atInitiator.handshakeHash == atResponder.handshakeHash)
        #expect(atInitiator.suite == suite)

        // Initiator's first record (empty, PROTOCOL.md §3.5), then data both ways.
        var up = ByteBuffer()
        try atInitiator.sealer.seal(ByteBuffer(), into: &up)
        try atInitiator.sealer.seal(ByteBuffer(string: "ping"), into: &up)
        #expect(try atResponder.opener.open(&up)?.payload.readableBytes == 0)
        #expect(try atResponder.opener.open(&up)?.payload == ByteBuffer(string: "ping"))
        var down = ByteBuffer()
        try atResponder.sealer.seal(ByteBuffer(string: "pong"), into: &down)
        #expect(try atInitiator.opener.open(&down)?.payload == ByteBuffer(string: "pong"))
    }

    /// Split-mode links bind their token into the prologue (PROTOCOL.md §3.2): the same
    /// token on both sides works, a different one (a spliced pairing) fails message 1's tag.
    @Test func transportBindingMustMatch() throws {
        let token = Array("AAAAAAAAAAAAAAAAAAAAAA".utf8)
        for (responderBinding, succeeds) in [(token, true), (Array("BAAAAAAAAAAAAAAAAAAAAA".utf8), false), ([], false)] {
            var initiator = LinkInitiator(psk: psk, hello: hello(), transportBinding: token)
            var wire1 = ByteBuffer()
            try initiator.start(into: &wire1)
            var resp = LinkResponder(local: .init(nodeName: "hub", transportBinding: responderBinding))
            var filter = HandshakeReplayFilter()
            var wire2 = ByteBuffer()
            if succeeds {
                _ = try #require(try resp.receive(&wire1, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &wire2))
                #expect(try initiator.receive(&wire2) != nil)
            } else {
                #expect(throws: HandshakeError.authenticationFailed) {
                    try resp.receive(&wire1, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &wire2)
                }
            }
        }
    }

    @Test func dripFedOneByteAtATime() throws {
        var (initiator, wire1) = try message1()
        var resp = responder()
        var filter = HandshakeReplayFilter()
        var inbound = ByteBuffer()
        var wire2 = ByteBuffer()
        var established: LinkEstablished?
        while let byte = wire1.readInteger(as: UInt8.self) {
            #expect(established == nil)
            inbound.writeInteger(byte)
            established = try resp.receive(&inbound, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &wire2)
            if established != nil { #expect(wire1.readableBytes == 0) }
        }
        #expect(established != nil)
        var back = ByteBuffer()
        var result: LinkEstablished?
        while let byte = wire2.readInteger(as: UInt8.self) {
            back.writeInteger(byte)
            result = try initiator.receive(&back)
            if result == nil { #expect(wire2.readableBytes > 0) }
        }
        #expect(result != nil)
    }

    @Test func unknownAndWrongKeysAreRejected() throws {
        var (_, wire1) = try message1(key: other)
        var filter = HandshakeReplayFilter()
        var out = ByteBuffer()
        var resp = responder()
        #expect(throws: HandshakeError.unknownKeyID(other.id)) {
            try resp.receive(&wire1, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out)
        }
        // A key table that maps the id to a different secret: the AEAD tag fails.
        (_, wire1) = try message1(key: other)
        resp = responder()
        #expect(throws: HandshakeError.authenticationFailed) {
            try resp.receive(&wire1, now: Self.now, keys: { _ in self.psk }, replayFilter: &filter, into: &out)
        }
        #expect(out.readableBytes == 0)
        #expect(filter.count == 0)
    }

    /// Key-id oracle: a prober must not learn which key ids we hold from when we close. An
    /// unknown id is read as far as a known one (to the end of message 1) before the refusal.
    @Test func anUnknownKeyIDIsRefusedOnlyWhenMessage1IsComplete() throws {
        for key in [other, psk] {  // unknown id; known id with a wrong secret behind it
            let (_, wire1) = try message1(key: key)
            let keys: (KeyID) -> PreSharedKey? = key.id == psk.id ? { _ in self.other } : lookup([psk])
            for cut in [14, 15, 16, 40, wire1.readableBytes - 1] {
                var partial = try #require(wire1.getSlice(at: 0, length: cut))
                var resp = responder()
                var filter = HandshakeReplayFilter()
                var out = ByteBuffer()
                #expect(try resp.receive(&partial, now: Self.now, keys: keys, replayFilter: &filter, into: &out) == nil,
                        "refused after \(cut) of \(wire1.readableBytes) bytes")
            }
            var whole = wire1
            var resp = responder()
            var filter = HandshakeReplayFilter()
            var out = ByteBuffer()
            #expect(throws: (any Error).self) { try resp.receive(&whole, now: Self.now, keys: keys, replayFilter: &filter, into: &out) }
            #expect(out.readableBytes == 0)
        }
    }

    /// Reflection: a node that dials and accepts with one PSK gets its own message 1 back
    /// (an on-path attacker turned the connection around). It must not answer it.
    @Test func aReflectedMessage1IsRefused() throws {
        var initiator = LinkInitiator(psk: psk, hello: LinkHello(
            timestamp: Self.now, sessionID: Array(repeating: 0xAB, count: 16), linkIndex: 0, features: [],
            maxRecordPayload: 65536, nodeName: "hub"))
        var wire1 = ByteBuffer()
        try initiator.start(into: &wire1)
        var resp = responder()  // also "hub"
        var filter = HandshakeReplayFilter()
        var out = ByteBuffer()
        #expect(throws: HandshakeError.reflected) {
            try resp.receive(&wire1, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out)
        }
        #expect(out.readableBytes == 0)
    }

    @Test func everyFlippedBitOfMessage1IsATypedError() throws {
        let (_, wire1) = try message1()
        let bytes = Array(wire1.readableBytesView)
        for index in bytes.indices {
            var tampered = bytes
            tampered[index] ^= 0x10
            var inbound = ByteBuffer(bytes: tampered)
            var resp = responder()
            var filter = HandshakeReplayFilter()
            var out = ByteBuffer()
            do {
                let result = try resp.receive(&inbound, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out)
                #expect(result == nil, "byte \(index) accepted")
                #expect(throws: HandshakeError.truncated) { try resp.finish() }
            } catch {
                #expect(out.readableBytes == 0, "byte \(index): replied after \(error)")
            }
        }
    }

    @Test func everyFlippedBitOfMessage2IsATypedError() throws {
        let (initiator0, wire1Original) = try message1()
        var wire1 = wire1Original
        var resp = responder()
        var filter = HandshakeReplayFilter()
        var wire2 = ByteBuffer()
        _ = try resp.receive(&wire1, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &wire2)
        let bytes = Array(wire2.readableBytesView)
        for index in bytes.indices {
            var initiator = initiator0
            var tampered = bytes
            tampered[index] ^= 0x01
            var inbound = ByteBuffer(bytes: tampered)
            do {
                #expect(try initiator.receive(&inbound) == nil, "byte \(index) accepted")
                #expect(throws: HandshakeError.truncated) { try initiator.finish() }
            } catch {
                #expect([HandshakeError.authenticationFailed, .messageTooLarge(Int(tampered[0]) << 8 | Int(tampered[1]))]
                    .contains(error) || index < 2, "byte \(index): \(error)")
            }
        }
    }

    @Test func truncatedMessagesWaitThenFailAtEndOfStream() throws {
        let (_, wire1) = try message1()
        for cut in [1, 4, 13, 15, wire1.readableBytes - 1] {
            var partial = wire1.getSlice(at: 0, length: cut) ?? ByteBuffer()
            var resp = responder()
            var filter = HandshakeReplayFilter()
            var out = ByteBuffer()
            #expect(try resp.receive(&partial, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out) == nil)
            #expect(throws: HandshakeError.truncated) { try resp.finish() }
        }
        var (initiator, _) = try message1()
        var empty = ByteBuffer(bytes: [0x00])
        #expect(try initiator.receive(&empty) == nil)
        #expect(throws: HandshakeError.truncated) { try initiator.finish() }
    }

    @Test func replayedMessage1IsRejected() throws {
        let (_, wire1) = try message1()
        var filter = HandshakeReplayFilter()
        var first = wire1
        var out = ByteBuffer()
        var resp = responder()
        #expect(try resp.receive(&first, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out) != nil)
        var replay = wire1
        resp = responder()
        #expect(throws: HandshakeError.replayed) {
            try resp.receive(&replay, now: Self.now + 1_000_000_000, keys: self.lookup([self.psk]), replayFilter: &filter, into: &out)
        }
    }

    @Test func timestampsOutsideTheWindowAreRejected() throws {
        var filter = HandshakeReplayFilter(window: .seconds(120))
        var out = ByteBuffer()
        for offset in [Int64(-121), 121] {
            var (_, wire1) = try message1(timestamp: UInt64(Int64(Self.now) + offset * 1_000_000_000))
            var resp = responder()
            #expect(throws: HandshakeError.timestampOutsideWindow(skewNanoseconds: offset * 1_000_000_000)) {
                try resp.receive(&wire1, now: Self.now, keys: self.lookup([self.psk]), replayFilter: &filter, into: &out)
            }
        }
        var (_, fresh) = try message1(timestamp: Self.now - 100_000_000_000)
        var resp = responder()
        #expect(try resp.receive(&fresh, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out) != nil)
    }

    @Test func garbageIsRejectedEarly() throws {
        for _ in 0..<200 {
            var junk = ByteBuffer(bytes: try SecureRandom.bytes(Int.random(in: 1...300)))
            var resp = responder()
            var filter = HandshakeReplayFilter()
            var out = ByteBuffer()
            do {
                _ = try resp.receive(&junk, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out)
                // Only possible when the random bytes are a prefix of the magic.
            } catch {
                #expect(error == .badMagic || junk.readableBytes < 4)
            }
            #expect(out.readableBytes == 0)
        }
        // Valid header with the right key id, then random bytes: the tag fails.
        let (_, wire1) = try message1()
        var forged = ByteBuffer(bytes: Array(wire1.readableBytesView.prefix(16)))
        forged.writeBytes(try SecureRandom.bytes(wire1.readableBytes - 16))
        var resp = responder()
        var filter = HandshakeReplayFilter()
        var out = ByteBuffer()
        #expect(throws: HandshakeError.authenticationFailed) {
            try resp.receive(&forged, now: Self.now, keys: self.lookup([self.psk]), replayFilter: &filter, into: &out)
        }
    }

    @Test func versionSuiteAndSizeChecks() throws {
        let (_, wire1) = try message1()
        var bytes = Array(wire1.readableBytesView)
        func attempt(_ b: [UInt8]) throws {
            var inbound = ByteBuffer(bytes: b)
            var resp = LinkResponder(local: .init(nodeName: "hub", suites: [.aes256gcm]))
            var filter = HandshakeReplayFilter()
            var out = ByteBuffer()
            _ = try resp.receive(&inbound, now: Self.now, keys: lookup([psk]), replayFilter: &filter, into: &out)
        }
        bytes[4] = 9
        #expect(throws: HandshakeError.unsupportedVersion(9)) { try attempt(bytes) }
        bytes[4] = 1
        bytes[5] = AEADAlgorithm.chacha20poly1305.rawValue
        #expect(throws: HandshakeError.unsupportedSuite(2)) { try attempt(bytes) }
        bytes[5] = 1
        bytes[14] = 0xFF
        #expect(throws: HandshakeError.messageTooLarge(Int(0xFF) << 8 | Int(bytes[15]))) { try attempt(bytes) }
    }

    @Test func replayFilterStaysBoundedAndRemembersWhatItEvicted() throws {
        var filter = HandshakeReplayFilter(window: .seconds(120), capacity: 16)
        for i in 0..<40 {
            try filter.admit(keyID: psk.id, timestamp: Self.now + UInt64(i), ephemeral: [UInt8(i)], now: Self.now)
        }
        #expect(filter.count == 16)
        // Evicted entries can never come back: their timestamps are at or below the floor.
        #expect(throws: HandshakeError.replayed) {
            try filter.admit(keyID: psk.id, timestamp: Self.now + 3, ephemeral: [3], now: Self.now)
        }
        #expect(throws: HandshakeError.replayed) {
            try filter.admit(keyID: psk.id, timestamp: Self.now + 39, ephemeral: [39], now: Self.now)
        }
        try filter.admit(keyID: psk.id, timestamp: Self.now + 100, ephemeral: [100], now: Self.now)
        // Another key's handshakes are unaffected by this key's floor.
        try filter.admit(keyID: other.id, timestamp: Self.now, ephemeral: [3], now: Self.now)
    }

    @Test func keyIDIsDerivedFromTheSecretAndWeakKeysAreRefused() throws {
        let copy = try PreSharedKey(secret: SecretBytes(psk.secret.revealedBytes))
        #expect(copy.id == psk.id)
        #expect(psk.id != other.id)
        #expect(psk.id.description.count == 16)
        #expect(throws: PreSharedKey.Problem.weak) { try PreSharedKey(secret: SecretBytes([UInt8](repeating: 0, count: 32))) }
        #expect(throws: PreSharedKey.Problem.weak) {
            try PreSharedKey(secret: SecretBytes(Array("passwordpasswordpasswordpassword".utf8)))
        }
        #expect(throws: PreSharedKey.Problem.wrongLength(16)) { try PreSharedKey(secret: SecretBytes([UInt8](0..<16))) }
        // The floor is 16 distinct byte values, wherever they lie in 0…255.
        let fifteen = (0..<32).map { UInt8(truncatingIfNeeded: ($0 % 15) * 17) }
        #expect(throws: PreSharedKey.Problem.weak) { try PreSharedKey(secret: SecretBytes(fifteen)) }
        _ = try PreSharedKey(secret: SecretBytes((0..<32).map { UInt8(truncatingIfNeeded: ($0 % 16) * 17) }))
        #expect([UInt8](0...255).withUnsafeBytes { PreSharedKey.distinctValues($0) } == 256)
    }
}
