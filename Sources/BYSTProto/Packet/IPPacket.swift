/// Read-only view of the IP header fields BYST routes on (RFC 791, RFC 8200).
///
/// **Invariants**: built only from bytes that hold a complete IPv4 header (with options) or
/// IPv6 fixed header; `source`/`destination` are 4 or 16 bytes.
public struct IPPacket {
    public let version: UInt8
    public let source: ArraySlice<UInt8>
    public let destination: ArraySlice<UInt8>
    /// The transport protocol (IPv4 protocol, IPv6 next header when no extension header).
    public let transport: UInt8
    /// Offset of the transport header in the packet.
    public let transportOffset: Int
    /// True for a non-first IPv4 fragment (no transport header in it).
    public let isLaterFragment: Bool

    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17

    /// The most bytes an IPv4 header (with options) or IPv6 fixed header takes.
    public static let maxHeaderBytes = 60

    /// Parses `bytes` (a whole packet from the TUN); nil if it is not a well-formed IPv4/IPv6 packet.
    public init?(_ bytes: [UInt8]) {
        self.init(bytes, length: bytes.count)
    }

    /// Parses the header in `bytes`, the first bytes of a packet of `length` bytes (at least
    /// `maxHeaderBytes` of them, or all): for a super-packet whose rest is not needed here.
    public init?(_ bytes: [UInt8], length: Int) {
        guard let first = bytes.first, bytes.count <= length else { return nil }
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, bytes.count >= headerLength else { return nil }
            let total = Int(bytes[2]) << 8 | Int(bytes[3])
            guard total >= headerLength, total <= length else { return nil }
            version = 4
            source = bytes[12..<16]
            destination = bytes[16..<20]
            transport = bytes[9]
            transportOffset = headerLength
            isLaterFragment = (Int(bytes[6] & 0x1F) << 8 | Int(bytes[7])) != 0
        case 6:
            guard bytes.count >= 40 else { return nil }
            let payload = Int(bytes[4]) << 8 | Int(bytes[5])
            guard 40 + payload <= length else { return nil }
            version = 6
            source = bytes[8..<24]
            destination = bytes[24..<40]
            transport = bytes[6]
            transportOffset = 40
            isLaterFragment = false
        default:
            return nil
        }
    }

    /// Traffic that means something only on the link it was sent on, which a tunnel must not
    /// carry to a peer: ICMP redirects (IPv4 type 5, ICMPv6 type 137: a hub's kernel sends
    /// them when a branch's packet leaves through the interface it came in by), IPv6 packets
    /// from a link-local source (fe80::/10) and link-scoped multicast (224.0.0.0/24, ff02::/16).
    public func isLinkScoped(_ bytes: [UInt8]) -> Bool {
        let icmp: UInt8 = version == 4 ? 1 : 58, redirect: UInt8 = version == 4 ? 5 : 137
        if transport == icmp, !isLaterFragment, bytes.count > transportOffset, bytes[transportOffset] == redirect { return true }
        let d0 = destination[destination.startIndex], d1 = destination[destination.startIndex + 1]
        if version == 4 { return d0 == 224 && d1 == 0 && destination[destination.startIndex + 2] == 0 }
        let s0 = source[source.startIndex], s1 = source[source.startIndex + 1]
        return (s0 == 0xFE && s1 & 0xC0 == 0x80) || (d0 == 0xFF && d1 & 0x0F == 0x02)
    }

    /// A hash of the flow (addresses, protocol, ports): packets of one flow keep one link.
    public func flowHash(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        source.forEach(mix)
        destination.forEach(mix)
        mix(transport)
        if (transport == Self.tcp || transport == Self.udp), !isLaterFragment, bytes.count >= transportOffset + 4 {
            for index in transportOffset..<(transportOffset + 4) { mix(bytes[index]) }
        }
        return hash
    }
}
