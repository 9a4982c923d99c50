/// A record payload that carries nothing but packet-channel frames (`packet`,
/// `offloadPacket` and their sequenced forms, PROTOCOL.md §5.2, §5.4) — what a TUN link carries almost all the
/// time. Read here without building `Frame` values or session events: the runtime hands
/// each packet straight to its TUN. Anything else (an empty payload, any other frame, a
/// truncated frame) is left to `SessionMachine.receive`, which decodes and judges it.
public enum PacketRecord {
    /// How many frames `payload` holds if it is one or more whole packet frames and
    /// nothing else; nil otherwise. Sequenced frames count only on a link that negotiated them
    /// (`sequenced`); on any other, the session refuses them.
    public static func packetCount(_ payload: UnsafeRawBufferPointer, sequenced: Bool = true) -> Int? {
        var offset = 0, count = 0
        while offset < payload.count {
            guard sequenced || payload[offset] < Frame.Kind.sequencedPacket.rawValue, let size = frameSize(payload, at: offset) else { return nil }
            offset += size
            count += 1
        }
        return count > 0 ? count : nil
    }

    /// Whether `payload` is one or more whole sequenced packet frames and nothing else: their
    /// order against other records does not matter (the receiver reorders them by number).
    public static func isSequencedOnly(_ payload: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < payload.count {
            guard payload[offset] >= Frame.Kind.sequencedPacket.rawValue, let size = frameSize(payload, at: offset) else { return false }
            offset += size
        }
        return offset > 0
    }

    /// Calls `body` with each frame's bytes after its kind, sequence number and length — for
    /// an offloaded packet, its virtio-net header and the packet —, whether it is offloaded, and
    /// its sequence number if it is a sequenced frame. Only for a payload `packetCount` accepted.
    public static func forEachPacket(_ payload: UnsafeRawBufferPointer,
                                     _ body: (UnsafeRawBufferPointer, _ offloaded: Bool, _ sequence: UInt64?) -> Void) {
        var offset = 0
        while offset < payload.count, let size = frameSize(payload, at: offset) {
            let kind = payload[offset]
            let offloaded = kind == Frame.Kind.offloadPacket.rawValue || kind == Frame.Kind.sequencedOffloadPacket.rawValue
            let sequenced = kind >= Frame.Kind.sequencedPacket.rawValue
            let header = sequenced ? Frame.sequencedPacketHeaderSize : Frame.packetHeaderSize
            let sequence = sequenced ? UInt64(bigEndian: payload.loadUnaligned(fromByteOffset: offset + 1, as: UInt64.self)) : nil
            body(UnsafeRawBufferPointer(rebasing: payload[(offset + header)..<(offset + size)]), offloaded, sequence)
            offset += size
        }
    }

    /// The whole size of the packet frame at `offset`, if it is one and lies inside `payload`.
    private static func frameSize(_ payload: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard offset + Frame.packetHeaderSize <= payload.count else { return nil }
        let kind = payload[offset]
        let sequenced = kind == Frame.Kind.sequencedPacket.rawValue || kind == Frame.Kind.sequencedOffloadPacket.rawValue
        let header = sequenced ? Frame.sequencedPacketHeaderSize : Frame.packetHeaderSize
        guard offset + header <= payload.count else { return nil }
        let length = Int(payload[offset + header - 2]) << 8 | Int(payload[offset + header - 1])
        let size: Int
        switch kind {
        case Frame.Kind.packet.rawValue, Frame.Kind.sequencedPacket.rawValue: size = header + length
        case Frame.Kind.offloadPacket.rawValue, Frame.Kind.sequencedOffloadPacket.rawValue: size = header + Frame.offloadHeaderSize + length
        default: return nil
        }
        return offset + size <= payload.count ? size : nil
    }
}
