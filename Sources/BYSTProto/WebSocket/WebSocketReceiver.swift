/// What a BYST link accepts in the frames of a WebSocket connection (RFC 6455 §5, PROTOCOL.md
/// §6.4): the rule book the NIO handler asks about every decoded frame, sans-IO (the time is
/// passed in). Binary messages carry the record stream; their boundaries mean nothing, so a
/// frame's bytes go to the link as they arrive and nothing is reassembled — a fragmented
/// message is only counted against the limits.
///
/// **Invariants**: after a `.fail` or `.closedByPeer` verdict every later frame is `.ignore`;
/// a message in progress never holds more than `maxMessageBytes` bytes or `maxMessageFrames`
/// frames; control frames are admitted at most `controlRate` per second after a burst of
/// `controlBurst`.
public struct WebSocketReceiver: Sendable {
    public enum Role: Sendable {
        /// The hub: client frames MUST be masked (RFC 6455 §5.1).
        case server
        /// The branch: server frames MUST NOT be masked.
        case client
    }

    /// The header fields of one decoded frame that the rules look at.
    public struct Frame: Sendable, Equatable {
        public var opcode: UInt8
        public var fin: Bool
        /// Any of RSV1–3 set; no extension is ever negotiated, so none may be.
        public var reservedBits: Bool
        public var masked: Bool
        public var length: Int

        public init(opcode: UInt8, fin: Bool = true, reservedBits: Bool = false, masked: Bool, length: Int) {
            self.opcode = opcode
            self.fin = fin
            self.reservedBits = reservedBits
            self.masked = masked
            self.length = length
        }
    }

    /// RFC 6455 §7.4.1 status codes BYST sends.
    public enum CloseCode: UInt16, Sendable, Equatable {
        case normal = 1000
        case protocolError = 1002
        case unsupportedData = 1003
        case policyViolation = 1008
        case messageTooBig = 1009
    }

    public enum Verdict: Sendable, Equatable {
        /// The frame's payload continues the link's byte stream.
        case data
        /// A ping: answer with a pong carrying the same payload.
        case pong
        /// Nothing to do (a pong, or anything after the connection began to close).
        case ignore
        /// The peer started the close handshake: answer with a close frame, then close.
        case closedByPeer
        /// Send a close frame with this code and close; `reason` is for the log.
        case fail(CloseCode, reason: String)
    }

    public enum Opcode {
        public static let continuation: UInt8 = 0x0
        public static let text: UInt8 = 0x1
        public static let binary: UInt8 = 0x2
        public static let close: UInt8 = 0x8
        public static let ping: UInt8 = 0x9
        public static let pong: UInt8 = 0xA
    }

    /// The largest message (and so frame) accepted: 2× what BYST sends in one frame, room for
    /// an intermediary that joins fragments. A decoder must hold a whole frame before it hands
    /// it on, so this bounds what one connection makes us buffer.
    public static let maxMessageBytes = 128 * 1024
    /// What BYST puts in one frame (each a whole binary message).
    public static let sendFrameBytes = 64 * 1024
    /// A message of more frames is refused: empty fragments would cost work and carry nothing.
    public static let maxMessageFrames = 1024
    /// Pings and pongs: BYST sends none (its keepalive is a record), so a peer or proxy that
    /// sends more than this is flooding.
    public static let controlRate = 10
    public static let controlBurst = 50
    /// Largest payload of a control frame (RFC 6455 §5.5).
    public static let maxControlPayload = 125

    public let role: Role
    private var controlBudget: TokenBucket
    /// Bytes and frames of the binary message in progress; nil between messages.
    private var message: (bytes: Int, frames: Int)?
    private var finished = false

    public init(role: Role, now: Nanoseconds) {
        self.role = role
        controlBudget = TokenBucket(rate: Self.controlRate, burst: Self.controlBurst, now: now)
    }

    public mutating func receive(_ frame: Frame, now: Nanoseconds) -> Verdict {
        guard !finished else { return .ignore }
        let verdict = judge(frame, now: now)
        switch verdict {
        case .fail, .closedByPeer: finished = true
        case .data, .pong, .ignore: break
        }
        return verdict
    }

    private mutating func judge(_ frame: Frame, now: Nanoseconds) -> Verdict {
        if frame.reservedBits { return .fail(.protocolError, reason: "reserved bits set (no extension was negotiated)") }
        switch (role, frame.masked) {
        case (.server, false): return .fail(.protocolError, reason: "unmasked frame from the client")
        case (.client, true): return .fail(.protocolError, reason: "masked frame from the server")
        default: break
        }
        switch frame.opcode {
        case Opcode.close, Opcode.ping, Opcode.pong:
            guard frame.fin, frame.length <= Self.maxControlPayload else {
                return .fail(.protocolError, reason: "fragmented or oversized control frame")
            }
            guard frame.opcode != Opcode.close else { return .closedByPeer }
            guard controlBudget.take(now: now) else {
                return .fail(.policyViolation, reason: "control frames over \(Self.controlRate)/s")
            }
            return frame.opcode == Opcode.ping ? .pong : .ignore
        case Opcode.text:
            return .fail(.unsupportedData, reason: "text frame (links carry binary messages only)")
        case Opcode.binary:
            guard message == nil else { return .fail(.protocolError, reason: "new message inside a fragmented one") }
            return continueMessage(frame, bytes: 0, frames: 0)
        case Opcode.continuation:
            guard let (bytes, frames) = message else { return .fail(.protocolError, reason: "continuation frame outside a message") }
            return continueMessage(frame, bytes: bytes, frames: frames)
        default:
            return .fail(.protocolError, reason: "reserved opcode \(frame.opcode)")
        }
    }

    private mutating func continueMessage(_ frame: Frame, bytes: Int, frames: Int) -> Verdict {
        let (total, overflow) = bytes.addingReportingOverflow(frame.length)
        guard !overflow, total <= Self.maxMessageBytes else {
            return .fail(.messageTooBig, reason: "message over \(Self.maxMessageBytes) bytes")
        }
        guard frames < Self.maxMessageFrames else {
            return .fail(.messageTooBig, reason: "message of more than \(Self.maxMessageFrames) frames")
        }
        message = frame.fin ? nil : (total, frames + 1)
        return .data
    }

    /// The connection is closing from our side: later frames are ignored.
    public mutating func finish() { finished = true }
}
