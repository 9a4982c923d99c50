import BYSTProto
import Glibc

/// Parsers for the config's string-encoded values (addresses, endpoints, target rules,
/// durations). Each returns the value or a `ValueProblem` the loader turns into a
/// `ConfigError` naming the key.
package enum ValueProblem: Error, Equatable {
    /// Malformed or out of range: "<key> must be <expected>, got <value>".
    case invalid(expected: String)
    /// Well-formed but for a feature this version does not have.
    case notSupportedYet(feature: String)
}

extension HostPort {
    static let expected = "\"host:port\" with a port 1…65535 (IPv6 as \"[::1]:7000\")"

    /// `host:port` or `[v6]:port`; the host is a DNS name or an IP address.
    package static func parse(_ text: String) -> Result<HostPort, ValueProblem> {
        guard let (host, port) = splitHostPort(text, wildcards: false), case .exact(let name) = host,
              case .exact(let number) = port
        else { return .failure(.invalid(expected: expected)) }
        return .success(HostPort(host: name, port: number))
    }
}

extension TargetRule {
    static let expected = "\"host:port\" where host or port may be \"*\" (IPv6 as \"[::1]:5432\")"

    static func parse(_ text: String) -> Result<TargetRule, ValueProblem> {
        guard let (host, port) = splitHostPort(text, wildcards: true) else { return .failure(.invalid(expected: expected)) }
        return .success(TargetRule(host: host, port: port))
    }
}

extension Endpoint {
    static let expected = "\"byst://host:port\", \"http://host:port/path\", \"https://host:port/path\" or \"port:NAME\""

    /// `byst://host:port`, an HTTP(S) URL, or an HA port name.
    static func parse(_ text: String) -> Result<Endpoint, ValueProblem> {
        let lower = text.lowercasedASCII()
        if lower.hasPrefix("byst://") {
            let rest = String(decoding: text.utf8.dropFirst("byst://".utf8.count), as: UTF8.self)
            guard !rest.contains("/") else { return .failure(.invalid(expected: "\"byst://host:port\" without a path")) }
            return HostPort.parse(rest).map(Endpoint.byst).mapError { _ in .invalid(expected: "\"byst://host:port\" with a port 1…65535") }
        }
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") { return HTTPEndpoint.parse(text).map(Endpoint.http) }
        if lower.hasPrefix("port:") {
            let name = String(text.dropFirst("port:".count))
            guard RegistryService.isValidName(name) else { return .failure(.invalid(expected: "\"port:NAME\" with a name of 1…255 bytes")) }
            return .success(.port(name))
        }
        return .failure(.invalid(expected: expected))
    }
}

extension IPPrefix {
    static let allowedIPsExpected = "an IP prefix like \"10.0.2.0/24\" or \"fd00:2::/64\""
    static let interfaceAddressExpected = "an address with its prefix length, like \"10.0.1.1/24\" or \"fd00:1::1/64\""

    /// An `allowed_ips` entry: `address/length`, or a bare address (a /32 or /128 host
    /// prefix), as WireGuard reads AllowedIPs. Host bits are accepted and cleared.
    static func parseAllowedIP(_ text: String) -> Result<IPPrefix, ValueProblem> {
        guard let prefix = parseStrict(text, requireLength: false) else { return .failure(.invalid(expected: allowedIPsExpected)) }
        // Replacing the host's default route would also pull our own links into the tunnel.
        guard prefix.length > 0 else {
            return .failure(.notSupportedYet(feature: "a default route through the tunnel (prefix length 0)"))
        }
        return .success(prefix.network)
    }

    /// A `[tun]` address: `address/length` with a length of at least 1; host bits kept.
    static func parseInterfaceAddress(_ text: String) -> Result<IPPrefix, ValueProblem> {
        guard let prefix = parseStrict(text, requireLength: true), prefix.length > 0 else {
            return .failure(.invalid(expected: interfaceAddressExpected))
        }
        return .success(prefix)
    }

    /// `address[/length]`, the address read by `inet_pton` (which refuses signs, leading
    /// zeros in IPv4 and misplaced embedded IPv4), the length plain digits.
    private static func parseStrict(_ text: String, requireLength: Bool) -> IPPrefix? {
        let parts = text.utf8.split(separator: UInt8(ascii: "/"), maxSplits: 1, omittingEmptySubsequences: false)
        // inet_pton reads a C string: a NUL would end the address early and pass what follows.
        guard let addressBytes = parts.first, !text.utf8.contains(0) else { return nil }
        let isIPv6 = addressBytes.contains(UInt8(ascii: ":"))
        var buffer = in6_addr()
        guard inet_pton(isIPv6 ? AF_INET6 : AF_INET, String(decoding: addressBytes, as: UTF8.self), &buffer) == 1 else { return nil }
        let address = withUnsafeBytes(of: &buffer) { Array($0.prefix(isIPv6 ? 16 : 4)) }
        var length = address.count * 8
        if parts.count == 2 {
            guard (1...3).contains(parts[1].count),
                  parts[1].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  let value = Int(String(decoding: parts[1], as: UTF8.self))
            else { return nil }
            length = value
        } else if requireLength {
            return nil
        }
        return IPPrefix(address: address, length: length)
    }
}

/// Splits `host:port` / `[v6]:port`; with `wildcards`, either side may be `*`.
/// Nil if malformed: empty or bad host, IPv6 without brackets, port not 1…65535.
func splitHostPort(_ text: String, wildcards: Bool) -> (TargetRule.Host, TargetRule.Port)? {
    let bytes = Array(text.utf8)
    let hostBytes: ArraySlice<UInt8>
    let portBytes: ArraySlice<UInt8>
    let bracketed = bytes.first == UInt8(ascii: "[")
    if bracketed {
        guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close + 1 < bytes.count,
              bytes[close + 1] == UInt8(ascii: ":")
        else { return nil }
        hostBytes = bytes[1..<close]
        portBytes = bytes[(close + 2)...]
    } else {
        guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")) else { return nil }
        hostBytes = bytes[..<colon]
        portBytes = bytes[(colon + 1)...]
        // A second colon means an IPv6 address without its brackets.
        guard !hostBytes.contains(UInt8(ascii: ":")) else { return nil }
    }

    let host: TargetRule.Host
    let hostText = String(decoding: hostBytes, as: UTF8.self)
    if wildcards && !bracketed && hostText == "*" {
        host = .any
    } else if bracketed {
        guard isIPv6Address(hostText) else { return nil }
        host = .exact(hostText)
    } else {
        guard isHostName(hostBytes) else { return nil }
        host = .exact(hostText)
    }

    let port: TargetRule.Port
    if wildcards && portBytes.elementsEqual("*".utf8) {
        port = .any
    } else {
        // At most 5 digits: keeps the arithmetic far from overflow; the range check does the rest.
        guard (1...5).contains(portBytes.count),
              portBytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { return nil }
        let value = portBytes.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard (1...65535).contains(value) else { return nil }
        port = .exact(UInt16(value))
    }
    return (host, port)
}

/// A DNS name or IPv4 address: letters, digits, `.`, `-`, `_`, at most 253 bytes (RFC 1035).
private func isHostName(_ bytes: ArraySlice<UInt8>) -> Bool {
    guard !bytes.isEmpty, bytes.count <= 253 else { return false }
    return bytes.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}

private func isIPv6Address(_ text: String) -> Bool {
    var address = in6_addr()
    return inet_pton(AF_INET6, text, &address) == 1
}

extension Duration {
    static let configExpected = "a positive duration like \"250ms\", \"30s\", \"5m\", \"1h\" or an integer number of seconds"

    /// `<digits>ms|s|m|h`; nil if malformed, zero or too large to represent.
    package static func parseConfig(_ text: String) -> Duration? {
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for unit in units where text.hasSuffix(unit.suffix) {
            let digits = text.dropLast(unit.suffix.count)
            // "5ms" also ends in "s": "5m" is not a number, so the "s" branch fails and "ms" wins.
            guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  let count = Int64(digits), count > 0
            else { continue }
            let (total, overflow) = count.multipliedReportingOverflow(by: unit.milliseconds)
            guard !overflow else { return nil }
            return .milliseconds(total)
        }
        return nil
    }

    /// The shortest config spelling of an exact duration: `250ms`, `30s`, `5m`, `1h`.
    var configText: String {
        let (seconds, attoseconds) = components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard attoseconds % attosecondsPerMillisecond == 0, !overflow, scaled <= Int64.max - 1000 else { return description }
        let milliseconds = scaled + attoseconds / attosecondsPerMillisecond
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
