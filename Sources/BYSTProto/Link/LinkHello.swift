import NIOCore

/// Feature bits a node offers in its hello; the session uses the intersection.
public struct LinkFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// zstd-compressed records may be sent (PROTOCOL.md §4.2).
    public static let compression = LinkFeatures(rawValue: 1 << 0)
    /// Whole GSO super-packets with virtio-net headers may be sent.
    public static let gsoPackets = LinkFeatures(rawValue: 1 << 1)
    /// The sender reassembles a stream's data by offset, so the peer may stripe one stream
    /// over several links (PROTOCOL.md §5.3, "Striping").
    public static let streamStriping = LinkFeatures(rawValue: 1 << 2)
    /// The sender puts `sequencedPacket` frames back in order (PROTOCOL.md §5.4, "Packet
    /// striping"), so the peer may spread one flow's packets over its links.
    public static let sequencedPackets = LinkFeatures(rawValue: 1 << 3)
    /// The sender keeps idle links alive at the idle keepalive interval and lets them stay
    /// silent that much longer (PROTOCOL.md §5.5, "Idle links").
    public static let idleKeepalive = LinkFeatures(rawValue: 1 << 4)
    /// The sender reads `linkClosing` frames: the peer may say why it closes the link
    /// (PROTOCOL.md §5.5, "Close reasons").
    public static let closeReasons = LinkFeatures(rawValue: 1 << 5)
}

/// The handshake payload each side sends (PROTOCOL.md §3.3): who it is and what it accepts.
///
/// **Invariants**: `nodeName` is 1…64 bytes of UTF-8; `maxRecordPayload` is within
/// 1 KiB…1 MiB once decoded.
public struct LinkHello: Sendable, Equatable {
    public static let sessionIDSize = 16
    public static let maxNodeNameBytes = 64

    /// Sender's wall clock, nanoseconds since the Unix epoch.
    public var timestamp: UInt64
    /// Random id chosen by the initiator; links carrying it join one session.
    public var sessionID: [UInt8]
    /// Which of the session's N links this is (0-based).
    public var linkIndex: UInt16
    public var features: LinkFeatures
    /// Largest record payload the sender accepts.
    public var maxRecordPayload: UInt32
    public var nodeName: String

    public init(timestamp: UInt64, sessionID: [UInt8], linkIndex: UInt16, features: LinkFeatures,
                maxRecordPayload: UInt32, nodeName: String) {
        self.timestamp = timestamp
        self.sessionID = sessionID
        self.linkIndex = linkIndex
        self.features = features
        self.maxRecordPayload = maxRecordPayload
        self.nodeName = nodeName
    }

    public static func isValidNodeName(_ name: String) -> Bool {
        let count = name.utf8.count
        return count >= 1 && count <= maxNodeNameBytes
    }

    func encoded() -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(timestamp)
        buffer.writeBytes(sessionID)
        buffer.writeInteger(linkIndex)
        buffer.writeInteger(features.rawValue)
        buffer.writeInteger(maxRecordPayload)
        let name = Array(nodeName.utf8.prefix(Self.maxNodeNameBytes))
        buffer.writeInteger(UInt8(name.count))
        buffer.writeBytes(name)
        return Array(buffer.readableBytesView)
    }

    /// Parses a hello; bytes after the name are reserved for extensions and ignored.
    init(decoding bytes: [UInt8]) throws(HandshakeError) {
        var buffer = ByteBuffer(bytes: bytes)
        guard let timestamp = buffer.readInteger(as: UInt64.self),
              let sessionID = buffer.readBytes(length: Self.sessionIDSize),
              let linkIndex = buffer.readInteger(as: UInt16.self),
              let features = buffer.readInteger(as: UInt32.self),
              let maxPayload = buffer.readInteger(as: UInt32.self),
              let nameLength = buffer.readInteger(as: UInt8.self)
        else { throw .malformedHello("hello shorter than its fixed fields") }
        guard nameLength >= 1, Int(nameLength) <= Self.maxNodeNameBytes,
              let nameBytes = buffer.readBytes(length: Int(nameLength))
        else { throw .malformedHello("node name length \(nameLength) invalid or past the end") }
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
            throw .malformedHello("node name is not UTF-8")
        }
        guard maxPayload >= 1024, maxPayload <= UInt32(RecordLimits.upperMaxPayload) else {
            throw .malformedHello("max record payload \(maxPayload) outside 1024…\(RecordLimits.upperMaxPayload)")
        }
        self.init(timestamp: timestamp, sessionID: sessionID, linkIndex: linkIndex,
                  features: LinkFeatures(rawValue: features), maxRecordPayload: maxPayload, nodeName: name)
    }
}
