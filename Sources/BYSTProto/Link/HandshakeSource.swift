/// Who a handshake attempt comes from, for per-source rate limiting: an IPv4 address, or
/// the /64 prefix of an IPv6 address (one host usually holds a whole /64, so limiting
/// single IPv6 addresses would limit nothing). IPv4-mapped IPv6 addresses count as IPv4.
///
/// **Invariants**: `family` is 4 or 6; for IPv4 only the low 32 bits of `bits` are used.
public struct HandshakeSource: Hashable, Sendable, CustomStringConvertible {
    public let family: UInt8
    public let bits: UInt64

    /// From the address bytes in network order: 4 (IPv4) or 16 (IPv6); nil otherwise.
    public init?(addressBytes bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        switch bytes.count {
        case 4:
            self.init(ipv4: bytes)
        case 16:
            // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): the IPv4 host behind a dual-stack socket.
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                self.init(ipv4: Array(bytes[12..<16]))
            } else {
                self.init(family: 6, bits: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) })
            }
        default:
            return nil
        }
    }

    private init(ipv4 bytes: [UInt8]) {
        self.init(family: 4, bits: bytes.reduce(0) { $0 << 8 | UInt64($1) })
    }

    /// An IPv4 address as a number (`192.0.2.7` is 0xC000_0207): no allocation, for the
    /// accept path.
    public init(ipv4 address: UInt32) {
        self.init(family: 4, bits: UInt64(address))
    }

    /// An IPv6 address by its two halves as numbers (network order read big-endian); an
    /// IPv4-mapped one counts as its IPv4 address.
    public init(ipv6High high: UInt64, low: UInt64) {
        if high == 0, low >> 32 == 0xFFFF {
            self.init(ipv4: UInt32(truncatingIfNeeded: low))
        } else {
            self.init(family: 6, bits: high)
        }
    }

    private init(family: UInt8, bits: UInt64) {
        self.family = family
        self.bits = bits
    }

    /// `192.0.2.7`, or `2001:db8:0:1::/64`.
    public var description: String {
        if family == 4 {
            return [24, 16, 8, 0].map { String((bits >> UInt64($0)) & 0xFF) }.joined(separator: ".")
        }
        let groups = [48, 32, 16, 0].map { String((bits >> UInt64($0)) & 0xFFFF, radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
