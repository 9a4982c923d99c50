import NIOCore

/// Session frames (PROTOCOL.md §5). A record payload carries one or more frames back to
/// back; a frame never spans records.
///
/// **Invariants**: `encode` then `decode` is the identity; `decode` never reads past the
/// payload and rejects unknown types and impossible lengths with `FrameError`.
public enum Frame: Equatable, Sendable {
    /// Opens stream `id` towards `target` ("host:port"); the opener may send up to
    /// `window` bytes before the first `ack`.
    case open(id: UInt32, window: UInt64, target: String)
    /// Stream bytes at byte `offset` of the stream.
    case data(id: UInt32, offset: UInt64, bytes: ByteBuffer)
    /// Receiver state of stream `id` (0 = the session): every byte before `received` has
    /// arrived (senders may drop it); the sender may send bytes before `limit`.
    case ack(id: UInt32, received: UInt64, limit: UInt64)
    /// The stream's sender will send no bytes at or after `finalOffset`.
    case fin(id: UInt32, finalOffset: UInt64)
    /// Abort stream `id` in both directions.
    case reset(id: UInt32, code: ResetCode)
    /// Keepalive; answered by `pong` with the same value on the same link.
    case ping(UInt64)
    case pong(UInt64)
    /// The sender is shutting the session down.
    case goAway(code: UInt32)
    /// One IP packet of the packet channel (TUN): unreliable, never resent.
    case packet(ByteBuffer)
    /// An offloaded packet (PROTOCOL.md §5.4): its 10-byte virtio-net header, then the
    /// packet — a GSO super-packet, written whole to a TUN that takes such headers.
    case offloadPacket(ByteBuffer)
    /// The responder's session instance, first on each of its links: a different value
    /// than before means the responder lost the session's state (PROTOCOL.md §5.1).
    case instance(UInt64)
    /// The sender writes nothing more on this link after this frame (link recycling,
    /// PROTOCOL.md §5.6): move traffic off it and answer with `retire`.
    case retire
    /// Striping only (PROTOCOL.md §5.3): the bytes of `data` frames that arrived on this link
    /// so far (their lengths summed), sent back on the same link so that the sender knows how
    /// much is still queued there — a stream's cumulative `ack` cannot tell per link.
    case linkReceived(UInt64)
    /// A `packet` numbered `seq` in the sender's sequence towards this peer: the receiver puts
    /// these back in order (packet striping, PROTOCOL.md §5.4; feature `sequencedPackets`).
    case sequencedPacket(seq: UInt64, ByteBuffer)
    /// An `offloadPacket` (virtio-net header, then the packet) numbered like `sequencedPacket`.
    case sequencedOffloadPacket(seq: UInt64, ByteBuffer)
    /// The sender closes this link, for `reason`, once it wrote this frame (others may follow
    /// it in the same record); the receiver closes it after that record (feature
    /// `closeReasons`, PROTOCOL.md §5.5).
    case linkClosing(LinkCloseReason)

    public enum Kind: UInt8, Sendable {
        case open = 0x01, data = 0x02, ack = 0x03, fin = 0x04, reset = 0x05, ping = 0x06, pong = 0x07, goAway = 0x08
        case packet = 0x09, instance = 0x0A, retire = 0x0B, offloadPacket = 0x0C, linkReceived = 0x0D
        case sequencedPacket = 0x0E, sequencedOffloadPacket = 0x0F, linkClosing = 0x10
    }

    public struct ResetCode: RawRepresentable, Equatable, Sendable, CustomStringConvertible {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let cancelled = ResetCode(rawValue: 0)
        public static let connectFailed = ResetCode(rawValue: 1)
        public static let targetNotAllowed = ResetCode(rawValue: 2)
        public static let protocolError = ResetCode(rawValue: 3)
        public static let sessionExpired = ResetCode(rawValue: 4)
        public static let tooManyStreams = ResetCode(rawValue: 5)
        public var description: String {
            switch rawValue {
            case 0: "cancelled"
            case 1: "connect failed"
            case 2: "target not allowed"
            case 3: "protocol error"
            case 4: "session expired"
            case 5: "too many streams"
            default: "code \(rawValue)"
            }
        }
    }

    /// Bytes of a `data` frame before its payload: kind, id, offset, length.
    public static let dataHeaderSize = 1 + 4 + 8 + 4
    /// Bytes of a `packet` frame before the IP packet: kind, length.
    public static let packetHeaderSize = 1 + 2
    /// Bytes of a `sequencedPacket` frame before the IP packet: kind, sequence number, length.
    public static let sequencedPacketHeaderSize = 1 + 8 + 2
    /// The virtio-net header at the start of an `offloadPacket` frame's bytes.
    public static let offloadHeaderSize = 10
    /// The largest IP packet a `packet` (or `offloadPacket`) frame carries.
    public static let maxPacketSize = Int(UInt16.max)
    public static let maxTargetBytes = 255

    /// The bytes `encode` writes.
    /// Pings, pongs and the instance: what keeps a link alive, not traffic (an idle link
    /// carries only these, PROTOCOL.md §5.5).
    public var isLinkUpkeep: Bool {
        switch self {
        case .ping, .pong, .instance: true
        default: false
        }
    }

    public var encodedSize: Int {
        switch self {
        case .open(_, _, let target): 1 + 4 + 8 + 1 + min(target.utf8.count, Self.maxTargetBytes)
        case .data(_, _, let bytes): Self.dataHeaderSize + bytes.readableBytes
        case .ack: 1 + 4 + 8 + 8
        case .fin: 1 + 4 + 8
        case .reset: 1 + 4 + 4
        case .ping, .pong, .instance, .linkReceived: 1 + 8
        case .goAway, .linkClosing: 1 + 4
        case .retire: 1
        case .packet(let bytes): Self.packetHeaderSize + bytes.readableBytes
        case .offloadPacket(let bytes): Self.packetHeaderSize + bytes.readableBytes
        case .sequencedPacket(_, let bytes), .sequencedOffloadPacket(_, let bytes): Self.sequencedPacketHeaderSize + bytes.readableBytes
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .open(let id, let window, let target):
            let bytes = Array(target.utf8.prefix(Self.maxTargetBytes))
            buffer.writeInteger(Kind.open.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(window)
            buffer.writeInteger(UInt8(bytes.count))
            buffer.writeBytes(bytes)
        case .data(let id, let offset, var bytes):
            Self.writeDataHeader(id: id, offset: offset, length: bytes.readableBytes, into: &buffer)
            buffer.writeBuffer(&bytes)
        case .ack(let id, let received, let limit):
            buffer.writeInteger(Kind.ack.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(received)
            buffer.writeInteger(limit)
        case .fin(let id, let finalOffset):
            buffer.writeInteger(Kind.fin.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(finalOffset)
        case .reset(let id, let code):
            buffer.writeInteger(Kind.reset.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(code.rawValue)
        case .ping(let value):
            buffer.writeInteger(Kind.ping.rawValue)
            buffer.writeInteger(value)
        case .pong(let value):
            buffer.writeInteger(Kind.pong.rawValue)
            buffer.writeInteger(value)
        case .goAway(let code):
            buffer.writeInteger(Kind.goAway.rawValue)
            buffer.writeInteger(code)
        case .instance(let value):
            buffer.writeInteger(Kind.instance.rawValue)
            buffer.writeInteger(value)
        case .retire:
            buffer.writeInteger(Kind.retire.rawValue)
        case .linkClosing(let reason):
            buffer.writeInteger(Kind.linkClosing.rawValue)
            buffer.writeInteger(reason.rawValue)
        case .linkReceived(let value):
            buffer.writeInteger(Kind.linkReceived.rawValue)
            buffer.writeInteger(value)
        case .packet(var bytes):
            buffer.writeInteger(Kind.packet.rawValue)
            buffer.writeInteger(UInt16(truncatingIfNeeded: bytes.readableBytes))
            buffer.writeBuffer(&bytes)
        case .offloadPacket(var bytes):
            buffer.writeInteger(Kind.offloadPacket.rawValue)
            buffer.writeInteger(UInt16(truncatingIfNeeded: bytes.readableBytes - Self.offloadHeaderSize))
            buffer.writeBuffer(&bytes)
        case .sequencedPacket(let seq, var bytes):
            buffer.writeInteger(Kind.sequencedPacket.rawValue)
            buffer.writeInteger(seq)
            buffer.writeInteger(UInt16(truncatingIfNeeded: bytes.readableBytes))
            buffer.writeBuffer(&bytes)
        case .sequencedOffloadPacket(let seq, var bytes):
            buffer.writeInteger(Kind.sequencedOffloadPacket.rawValue)
            buffer.writeInteger(seq)
            buffer.writeInteger(UInt16(truncatingIfNeeded: bytes.readableBytes - Self.offloadHeaderSize))
            buffer.writeBuffer(&bytes)
        }
    }

    /// Writes a data frame header; the caller appends `length` payload bytes right after.
    public static func writeDataHeader(id: UInt32, offset: UInt64, length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(Kind.data.rawValue)
        buffer.writeInteger(id)
        buffer.writeInteger(offset)
        buffer.writeInteger(UInt32(length))
    }

    /// Decodes the next frame from a record payload; nil when the payload is used up.
    /// `data` frames return a slice of `payload` (no copy).
    public static func decode(from payload: inout ByteBuffer) throws(FrameError) -> Frame? {
        guard let kindByte = payload.readInteger(as: UInt8.self) else { return nil }
        guard let kind = Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        switch kind {
        case .open:
            guard let id = payload.readInteger(as: UInt32.self), let window = payload.readInteger(as: UInt64.self),
                  let length = payload.readInteger(as: UInt8.self), let bytes = payload.readBytes(length: Int(length))
            else { throw .truncated(kind) }
            guard let target = String(validating: bytes, as: UTF8.self) else { throw .malformed("target is not UTF-8") }
            return .open(id: id, window: window, target: target)
        case .data:
            guard let id = payload.readInteger(as: UInt32.self), let offset = payload.readInteger(as: UInt64.self),
                  let length = payload.readInteger(as: UInt32.self), let bytes = payload.readSlice(length: Int(length))
            else { throw .truncated(kind) }
            guard offset <= UInt64.max - UInt64(length) else { throw .malformed("data offset overflows") }
            return .data(id: id, offset: offset, bytes: bytes)
        case .ack:
            guard let id = payload.readInteger(as: UInt32.self), let received = payload.readInteger(as: UInt64.self),
                  let limit = payload.readInteger(as: UInt64.self) else { throw .truncated(kind) }
            return .ack(id: id, received: received, limit: limit)
        case .fin:
            guard let id = payload.readInteger(as: UInt32.self), let offset = payload.readInteger(as: UInt64.self)
            else { throw .truncated(kind) }
            return .fin(id: id, finalOffset: offset)
        case .reset:
            guard let id = payload.readInteger(as: UInt32.self), let code = payload.readInteger(as: UInt32.self)
            else { throw .truncated(kind) }
            return .reset(id: id, code: ResetCode(rawValue: code))
        case .ping, .pong:
            guard let value = payload.readInteger(as: UInt64.self) else { throw .truncated(kind) }
            return kind == .ping ? .ping(value) : .pong(value)
        case .goAway:
            guard let code = payload.readInteger(as: UInt32.self) else { throw .truncated(kind) }
            return .goAway(code: code)
        case .instance:
            guard let value = payload.readInteger(as: UInt64.self) else { throw .truncated(kind) }
            return .instance(value)
        case .retire:
            return .retire
        case .linkClosing:
            guard let code = payload.readInteger(as: UInt32.self) else { throw .truncated(kind) }
            return .linkClosing(LinkCloseReason(rawValue: code))
        case .linkReceived:
            guard let value = payload.readInteger(as: UInt64.self) else { throw .truncated(kind) }
            return .linkReceived(value)
        case .packet:
            guard let length = payload.readInteger(as: UInt16.self), let bytes = payload.readSlice(length: Int(length))
            else { throw .truncated(kind) }
            return .packet(bytes)
        case .offloadPacket:
            guard let length = payload.readInteger(as: UInt16.self),
                  let bytes = payload.readSlice(length: Self.offloadHeaderSize + Int(length))
            else { throw .truncated(kind) }
            return .offloadPacket(bytes)
        case .sequencedPacket, .sequencedOffloadPacket:
            let extra = kind == .sequencedOffloadPacket ? Self.offloadHeaderSize : 0
            guard let seq = payload.readInteger(as: UInt64.self), let length = payload.readInteger(as: UInt16.self),
                  let bytes = payload.readSlice(length: extra + Int(length))
            else { throw .truncated(kind) }
            return kind == .sequencedPacket ? .sequencedPacket(seq: seq, bytes) : .sequencedOffloadPacket(seq: seq, bytes)
        }
    }
}

/// Why a side closes a link (`linkClosing` frames). Unknown codes are kept as they came.
public struct LinkCloseReason: RawRepresentable, Equatable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let unspecified = LinkCloseReason(rawValue: 0)
    /// Nothing arrived on the link for the sender's dead-link timeout: what its peer writes
    /// there stopped reaching it, while its own writes may still get through.
    public static let deadLink = LinkCloseReason(rawValue: 1)
    public var description: String {
        switch rawValue {
        case 0: "no reason given"
        case 1: "nothing of ours reached it for its dead-link timeout"
        default: "code \(rawValue)"
        }
    }
}

public enum FrameError: Error, Equatable, Sendable {
    case unknownKind(UInt8)
    case truncated(Frame.Kind)
    case malformed(String)
}
