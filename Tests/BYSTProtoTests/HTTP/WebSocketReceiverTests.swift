import BYSTProto
import Testing

/// The frame rules of a WebSocket link (PROTOCOL.md §6.4), with an injected clock.
@Suite struct WebSocketReceiverTests {
    typealias Frame = WebSocketReceiver.Frame
    typealias Op = WebSocketReceiver.Opcode
    static let second: Nanoseconds = 1_000_000_000

    static func binary(_ length: Int, fin: Bool = true, masked: Bool = true) -> Frame {
        Frame(opcode: Op.binary, fin: fin, masked: masked, length: length)
    }

    static func continuation(_ length: Int, fin: Bool, masked: Bool = true) -> Frame {
        Frame(opcode: Op.continuation, fin: fin, masked: masked, length: length)
    }

    static func code(_ verdict: WebSocketReceiver.Verdict) -> WebSocketReceiver.CloseCode? {
        if case .fail(let code, _) = verdict { return code }
        return nil
    }

    @Test func binaryMessagesAndTheirFragmentsAreData() {
        var receiver = WebSocketReceiver(role: .server, now: 0)
        #expect(receiver.receive(Self.binary(100), now: 0) == .data)
        #expect(receiver.receive(Self.binary(0), now: 0) == .data)
        #expect(receiver.receive(Self.binary(10, fin: false), now: 0) == .data)
        #expect(receiver.receive(Self.continuation(10, fin: false), now: 0) == .data)
        // A control frame may come between the fragments of a message (RFC 6455 §5.4).
        #expect(receiver.receive(Frame(opcode: Op.ping, masked: true, length: 4), now: 0) == .pong)
        #expect(receiver.receive(Self.continuation(10, fin: true), now: 0) == .data)
        #expect(receiver.receive(Self.binary(WebSocketReceiver.maxMessageBytes), now: 0) == .data)
    }

    @Test func unmaskedClientFramesAndMaskedServerFramesAreProtocolErrors() {
        var server = WebSocketReceiver(role: .server, now: 0)
        #expect(Self.code(server.receive(Self.binary(10, masked: false), now: 0)) == .protocolError)
        // Once failed, everything after is ignored.
        #expect(server.receive(Self.binary(10), now: 0) == .ignore)
        var client = WebSocketReceiver(role: .client, now: 0)
        #expect(client.receive(Self.binary(10, masked: false), now: 0) == .data)
        #expect(Self.code(client.receive(Self.binary(10, masked: true), now: 0)) == .protocolError)
    }

    @Test func textFramesAreUnsupportedData() {
        var receiver = WebSocketReceiver(role: .server, now: 0)
        #expect(Self.code(receiver.receive(Frame(opcode: Op.text, masked: true, length: 5), now: 0)) == .unsupportedData)
    }

    @Test func oversizedMessagesAreTooBigWholeOrFragmented() {
        var whole = WebSocketReceiver(role: .server, now: 0)
        #expect(Self.code(whole.receive(Self.binary(WebSocketReceiver.maxMessageBytes + 1), now: 0)) == .messageTooBig)
        var fragmented = WebSocketReceiver(role: .server, now: 0)
        let piece = WebSocketReceiver.maxMessageBytes / 4
        #expect(fragmented.receive(Self.binary(piece, fin: false), now: 0) == .data)
        for _ in 0..<3 { #expect(fragmented.receive(Self.continuation(piece, fin: false), now: 0) == .data) }
        #expect(Self.code(fragmented.receive(Self.continuation(1, fin: true), now: 0)) == .messageTooBig)
        // A flood of empty fragments in one message.
        var empty = WebSocketReceiver(role: .server, now: 0)
        #expect(empty.receive(Self.binary(0, fin: false), now: 0) == .data)
        var last = WebSocketReceiver.Verdict.data
        for _ in 0..<WebSocketReceiver.maxMessageFrames where last == .data { last = empty.receive(Self.continuation(0, fin: false), now: 0) }
        #expect(Self.code(last) == .messageTooBig)
        // Lengths near Int.max do not overflow the count.
        var huge = WebSocketReceiver(role: .server, now: 0)
        #expect(huge.receive(Self.binary(1, fin: false), now: 0) == .data)
        #expect(Self.code(huge.receive(Self.continuation(Int.max, fin: true), now: 0)) == .messageTooBig)
    }

    @Test func fragmentationOutOfOrderIsAProtocolError() {
        var stray = WebSocketReceiver(role: .server, now: 0)
        #expect(Self.code(stray.receive(Self.continuation(5, fin: true), now: 0)) == .protocolError)
        var nested = WebSocketReceiver(role: .server, now: 0)
        #expect(nested.receive(Self.binary(5, fin: false), now: 0) == .data)
        #expect(Self.code(nested.receive(Self.binary(5), now: 0)) == .protocolError)
    }

    @Test func badControlFramesReservedBitsAndOpcodesAreProtocolErrors() {
        let bad: [Frame] = [
            Frame(opcode: Op.ping, fin: false, masked: true, length: 1),
            Frame(opcode: Op.ping, masked: true, length: 126),
            Frame(opcode: Op.binary, reservedBits: true, masked: true, length: 1),
            Frame(opcode: 0x3, masked: true, length: 1),
            Frame(opcode: 0xB, masked: true, length: 1),
        ]
        for frame in bad {
            var receiver = WebSocketReceiver(role: .server, now: 0)
            #expect(Self.code(receiver.receive(frame, now: 0)) == .protocolError, "\(frame)")
        }
    }

    @Test func closeStartsTheCloseHandshake() {
        var receiver = WebSocketReceiver(role: .client, now: 0)
        #expect(receiver.receive(Frame(opcode: Op.close, masked: false, length: 2), now: 0) == .closedByPeer)
        #expect(receiver.receive(Self.binary(5, masked: false), now: 0) == .ignore)
    }

    @Test func controlFrameFloodsArePolicyViolationsButAModestRateIsNot() {
        var flood = WebSocketReceiver(role: .server, now: 0)
        let ping = Frame(opcode: Op.ping, masked: true, length: 0)
        for _ in 0..<WebSocketReceiver.controlBurst { #expect(flood.receive(ping, now: 0) == .pong) }
        #expect(Self.code(flood.receive(ping, now: 0)) == .policyViolation)

        // Pongs count too, and the bucket refills: the rate itself, for a minute, is fine.
        var steady = WebSocketReceiver(role: .server, now: 0)
        let pong = Frame(opcode: Op.pong, masked: true, length: 0)
        let interval = Self.second / Nanoseconds(WebSocketReceiver.controlRate)
        for tick in 0..<(60 * WebSocketReceiver.controlRate) {
            let now = Nanoseconds(tick) * interval
            #expect(Self.code(steady.receive(tick % 2 == 0 ? ping : pong, now: now)) == nil, "control frame \(tick) refused")
            #expect(steady.receive(Self.binary(1), now: now) == .data)
        }
    }

    @Test func maskingTwiceRestoresTheBytesAndMatchesTheRFCDefinition() {
        let key: (UInt8, UInt8, UInt8, UInt8) = (0x37, 0xFA, 0x21, 0x3D)
        for count in [0, 1, 5, 7, 8, 9, 31, 1000] {
            let original = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var bytes = original
            bytes.withUnsafeMutableBytes { WebSocketMask.apply(key: key, to: $0) }
            let keyBytes = [key.0, key.1, key.2, key.3]
            #expect(bytes == original.enumerated().map { $0.element ^ keyBytes[$0.offset % 4] }, "\(count) bytes")
            bytes.withUnsafeMutableBytes { WebSocketMask.apply(key: key, to: $0) }
            #expect(bytes == original)
            // Into another buffer, longer than the source: the same bytes, the rest untouched.
            var copy = [UInt8](repeating: 0xEE, count: count + 3)
            original.withUnsafeBytes { source in copy.withUnsafeMutableBytes { WebSocketMask.apply(key: key, from: source, to: $0) } }
            #expect(Array(copy.prefix(count)) == original.enumerated().map { $0.element ^ keyBytes[$0.offset % 4] }, "\(count) bytes copied")
            #expect(copy.suffix(3) == [0xEE, 0xEE, 0xEE])
        }
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        var hello = Array("Hello".utf8)
        hello.withUnsafeMutableBytes { WebSocketMask.apply(key: key, to: $0) }
        #expect(hello == [0x7F, 0x9F, 0x4D, 0x51, 0x58])
    }

    @Test func sha1MatchesTheRFCAcceptExample() throws {
        // RFC 6455 §1.3: key "dGhlIHNhbXBsZSBub25jZQ==" gives accept "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        // i.e. SHA-1 b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea.
        let digest = try SHA1.digest(Array("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8))
        #expect(digest == [0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6, 0x46, 0x06, 0xcf, 0x38, 0x59, 0x45,
                           0xb2, 0xbe, 0xc4, 0xea])
    }
}
