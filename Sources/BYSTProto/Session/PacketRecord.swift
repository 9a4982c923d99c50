/// A record payload that carries nothing but packet-channel frames (`packet` and
/// `offloadPacket`, PROTOCOL.md §5.2, §5.4) — what a TUN link carries almost all the
/// time. Read here without building `Frame` values or session events: the runtime hands
/// each packet straight to its TUN. Anything else (an empty payload, any other frame, a
/// truncated frame) is left to `SessionMachine.receive`, which decodes and judges it.
public enum PacketRecord {
    /// How many frames `payload` holds if it is one or more whole packet frames and
    /// nothing else; nil otherwise.
    public static func packetCount(_ payload: UnsafeRawBufferPointer) -> Int? {
        var offset = 0, count = 0
        while offset < payload.count {
            guard let size = frameSize(payload, at: offset) else { return nil }
            offset += size
            count += 1
        }
        return count > 0 ? count : nil
    }

    /// Calls `body` with each frame's bytes after its kind and length — for an
    /// `offloadPacket`, its virtio-net header and the packet — and whether it is offloaded.
    /// Only for a payload `packetCount` accepted.
    public static func forEachPacket(_ payload: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, _ offloaded: Bool) -> Void) {
        var offset = 0
        while offset < payload.count, let size = frameSize(payload, at: offset) {
            let offloaded = payload[offset] == Frame.Kind.offloadPacket.rawValue
            body(UnsafeRawBufferPointer(rebasing: payload[(offset + Frame.packetHeaderSize)..<(offset + size)]), offloaded)
            offset += size
        }
    }

    /// The whole size of the packet frame at `offset`, if it is one and lies inside `payload`.
    private static func frameSize(_ payload: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard offset + Frame.packetHeaderSize <= payload.count else { return nil }
        let kind = payload[offset]
        let length = Int(payload[offset + 1]) << 8 | Int(payload[offset + 2])
        let size: Int
        switch kind {
        case Frame.Kind.packet.rawValue: size = Frame.packetHeaderSize + length
        case Frame.Kind.offloadPacket.rawValue: size = Frame.packetHeaderSize + Frame.offloadHeaderSize + length
        default: return nil
        }
        return offset + size <= payload.count ? size : nil
    }
}
