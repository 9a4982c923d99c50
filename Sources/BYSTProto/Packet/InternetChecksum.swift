/// The Internet checksum (RFC 1071): one's complement sum of 16-bit big-endian words.
public struct InternetChecksum: Sendable {
    private var sum: UInt64 = 0

    public init() {}

    public mutating func add(word: UInt16) { sum &+= UInt64(word) }

    /// Adds `bytes` as if they started at an even offset (an odd last byte is padded with 0).
    public mutating func add(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { raw in
            var index = 0
            let count = raw.count
            // 8 bytes at a time: four words summed in a 64-bit accumulator, folded at the end.
            while index + 8 <= count {
                let chunk = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                sum &+= (chunk >> 48) &+ ((chunk >> 32) & 0xFFFF) &+ ((chunk >> 16) & 0xFFFF) &+ (chunk & 0xFFFF)
                index += 8
            }
            while index + 1 < count {
                sum &+= UInt64(raw[index]) << 8 | UInt64(raw[index + 1])
                index += 2
            }
            if index < count { sum &+= UInt64(raw[index]) << 8 }
        }
    }

    /// The one's complement of the folded sum.
    public func finish() -> UInt16 {
        var folded = sum
        while folded >> 16 != 0 { folded = (folded & 0xFFFF) &+ (folded >> 16) }
        return ~UInt16(folded)
    }

    /// Sets the full transport checksum at `field` over the pseudo-header and the transport
    /// header and payload up to `end` (RFC 793, 768, 8200 §8.1); a UDP result of 0 is sent as
    /// 0xFFFF ("no checksum" is 0).
    static func setTransport(_ bytes: inout [UInt8], ip: IPPacket, protocolNumber: UInt8, field: Int, end: Int) {
        let start = ip.transportOffset
        let length = end - start
        bytes[field] = 0
        bytes[field + 1] = 0
        var sum = InternetChecksum()
        sum.add(ip.source)
        sum.add(ip.destination)
        sum.add(word: UInt16(protocolNumber))
        sum.add(word: UInt16(truncatingIfNeeded: length >> 16))
        sum.add(word: UInt16(truncatingIfNeeded: length))
        sum.add(bytes[start..<end])
        var checksum = sum.finish()
        if protocolNumber == IPPacket.udp, checksum == 0 { checksum = 0xFFFF }
        bytes[field] = UInt8(checksum >> 8)
        bytes[field + 1] = UInt8(checksum & 0xFF)
    }
}
