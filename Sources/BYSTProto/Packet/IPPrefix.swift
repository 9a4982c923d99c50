/// An IPv4 or IPv6 address prefix such as `10.1.0.0/16` or `fd00:1::/64` (cryptokey
/// routing, TUN addresses and routes).
///
/// **Invariants**: `address` is 4 or 16 bytes; `length` ≤ 32 or 128. Host bits may be set
/// (an interface address keeps them); `network` clears them.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public let address: [UInt8]
    public let length: Int

    public var isIPv6: Bool { address.count == 16 }

    public init?(address: [UInt8], length: Int) {
        guard address.count == 4 || address.count == 16, length >= 0, length <= address.count * 8 else { return nil }
        self.address = address
        self.length = length
    }

    /// Parses `a.b.c.d/n`, `x:y::z/n`, or a bare address (a host prefix, /32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddressParser.parse(String(parts[0])) else { return nil }
        let maxLength = address.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0, value <= maxLength, parts[1].allSatisfy(\.isNumber) else { return nil }
            length = value
        }
        self.init(address: address, length: length)
    }

    /// The prefix with host bits cleared (what a route or an allowed-IPs entry means).
    public var network: IPPrefix {
        var bytes = address
        for bit in length..<(bytes.count * 8) { bytes[bit / 8] &= ~(0x80 >> UInt8(bit % 8)) }
        return IPPrefix(address: bytes, length: length) ?? self
    }

    /// Whether `ip` (4 or 16 bytes) lies inside this prefix.
    public func contains(_ ip: some Collection<UInt8>) -> Bool {
        contains(ArraySlice(ip))
    }

    /// `contains` for the address slices `IPPacket` gives: concrete, so the per-packet
    /// check runs without generic dispatch (which allocates for each byte it reads).
    public func contains(_ ip: ArraySlice<UInt8>) -> Bool {
        guard ip.count == address.count else { return false }
        var remaining = length
        var index = ip.startIndex
        for byte in address {
            if remaining <= 0 { return true }
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if (byte ^ ip[index]) & mask != 0 { return false }
            remaining -= 8
            index += 1
        }
        return true
    }

    public var addressDescription: String { IPAddressParser.format(address) }
    public var description: String { "\(addressDescription)/\(length)" }
}

/// Text ⇄ bytes for IPv4 and IPv6 addresses (RFC 4291 §2.2 forms, RFC 5952 output).
public enum IPAddressParser {
    public static func parse(_ text: String) -> [UInt8]? {
        text.contains(":") ? parseIPv6(text) : parseIPv4(text)
    }

    static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            // Decimal digits only, no leading zero (inet_pton refuses "010": octal ambiguity).
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  part.count == 1 || part.first != "0", let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        let chars = Array(text)
        var halves = [text]
        if let split = chars.indices.dropLast().first(where: { chars[$0] == ":" && chars[$0 + 1] == ":" }) {
            halves = [String(chars[..<split]), String(chars[(split + 2)...])]
            if halves[1].hasPrefix(":") || halves[1].contains("::") { return nil }
        }
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, isLast: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                // An embedded IPv4 address may only end the address (RFC 4291 §2.2 form 3).
                if isLast, index == pieces.count - 1, piece.contains("."), let v4 = parseIPv4(String(piece)) {
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4, piece.allSatisfy(\.isHexDigit),
                      let value = UInt16(piece, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0], isLast: halves.count == 1) else { return nil }
        let tail = halves.count == 2 ? groups(halves[1], isLast: true) : []
        guard let tail else { return nil }
        let missing = 8 - head.count - tail.count
        guard halves.count == 2 ? missing >= 1 : missing == 0 else { return nil }
        let all = head + [UInt16](repeating: 0, count: halves.count == 2 ? missing : 0) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return "?" }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        // The longest run (≥ 2) of zero groups becomes "::".
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > best.length { best = (index, end - index) }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.length >= 2 else { return hex.joined(separator: ":") }
        let head = hex[0..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}
