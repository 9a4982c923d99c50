/// Lowers the MSS option of TCP SYNs so segments fit the tunnel MTU (docs/ARCHITECTURE.md §4b:
/// MSS clamping both directions), fixing the TCP checksum.
public enum MSSClamp {
    /// The largest MSS for `mtu`: MTU minus the IP (20 or 40) and TCP (20) headers.
    public static func maximumSegmentSize(mtu: Int, ipv6: Bool) -> Int { mtu - (ipv6 ? 60 : 40) }

    /// Clamps in place; returns true if the packet was changed.
    @discardableResult
    public static func clamp(_ bytes: inout [UInt8], mtu: Int) -> Bool {
        guard let packet = IPPacket(bytes) else { return false }
        return clamp(&bytes, packet: packet, mtu: mtu)
    }

    /// `clamp(_:mtu:)` for a packet already parsed as `packet` (the per-packet paths).
    @discardableResult
    public static func clamp(_ bytes: inout [UInt8], packet: IPPacket, mtu: Int) -> Bool {
        guard packet.transport == IPPacket.tcp, !packet.isLaterFragment else { return false }
        let tcp = packet.transportOffset
        guard bytes.count >= tcp + 20, bytes[tcp + 13] & 0x02 != 0 else { return false }  // SYN
        let headerLength = Int(bytes[tcp + 12] >> 4) * 4
        guard headerLength >= 20, bytes.count >= tcp + headerLength else { return false }
        let limit = maximumSegmentSize(mtu: mtu, ipv6: packet.version == 6)
        guard limit > 0 else { return false }
        var index = tcp + 20
        while index < tcp + headerLength {
            let kind = bytes[index]
            if kind == 0 { break }  // end of options
            if kind == 1 { index += 1; continue }  // no-op
            guard index + 1 < tcp + headerLength else { break }
            let length = Int(bytes[index + 1])
            guard length >= 2, index + length <= tcp + headerLength else { break }
            if kind == 2, length == 4 {
                let mss = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
                guard mss > limit else { return false }
                bytes[index + 2] = UInt8(limit >> 8)
                bytes[index + 3] = UInt8(limit & 0xFF)
                setTransportChecksum(&bytes, packet: packet)
                return true
            }
            index += length
        }
        return false
    }

    /// Recomputes the TCP checksum over the pseudo-header and segment (RFC 793, RFC 8200 §8.1).
    static func setTransportChecksum(_ bytes: inout [UInt8], packet: IPPacket) {
        let end = packet.version == 4 ? Int(bytes[2]) << 8 | Int(bytes[3]) : 40 + (Int(bytes[4]) << 8 | Int(bytes[5]))
        InternetChecksum.setTransport(&bytes, ip: packet, protocolNumber: IPPacket.tcp, field: packet.transportOffset + 16, end: end)
    }
}
