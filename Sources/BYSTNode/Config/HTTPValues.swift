import BYSTProto

/// Parsers for the HTTP transport's config values: endpoint and proxy URLs, TLS pins, sizes.

/// The parts of `scheme://[userinfo@]host[:port][/path]`.
struct ParsedURL {
    var scheme: String
    var userinfo: String?
    var address: HostPort
    var path: String?
}

/// Splits a URL of the schemes given (with their default ports). Nil if malformed: no
/// authority, bad host or port, a query or fragment, or characters outside the safe path set.
func parseURL(_ text: String, schemes: [String: UInt16]) -> ParsedURL? {
    guard let separator = text.firstRange(of: "://") else { return nil }
    let scheme = String(text[..<separator.lowerBound]).lowercasedASCII()
    guard let defaultPort = schemes[scheme] else { return nil }
    var rest = Substring(text[separator.upperBound...])
    var path: String?
    if let slash = rest.firstIndex(of: "/") {
        path = String(rest[slash...])
        rest = rest[..<slash]
    }
    var userinfo: String?
    if let at = rest.lastIndex(of: "@") {
        userinfo = String(rest[..<at])
        rest = rest[rest.index(after: at)...]
    }
    let authority = String(rest)
    // With no port after the host (or after a bracketed IPv6 host), use the scheme's.
    let hasPort = authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":")
    guard case .success(let address) = HostPort.parse(hasPort ? authority : "\(authority):\(defaultPort)") else { return nil }
    if let path, !isSafePath(path) { return nil }
    return ParsedURL(scheme: scheme, userinfo: userinfo, address: address, path: path)
}

/// `/` followed by unreserved characters and slashes: no query, fragment, escapes or spaces.
func isSafePath(_ path: String) -> Bool {
    guard path.hasPrefix("/"), path.utf8.count <= 256 else { return false }
    return path.utf8.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "/._~-".utf8.contains(byte)
    }
}

/// `%XX` escapes decoded (userinfo in proxy URLs); nil on a bad escape or non-UTF-8 result.
func percentDecoded(_ text: String) -> String? {
    var bytes: [UInt8] = []
    var input = Array(text.utf8)[...]
    while let byte = input.popFirst() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard input.count >= 2, let high = HTTPSyntax.hexValue(input.removeFirst()), let low = HTTPSyntax.hexValue(input.removeFirst()) else { return nil }
        bytes.append(UInt8(high << 4 | low))
    }
    return String(validating: bytes, as: UTF8.self)
}

extension HTTPEndpoint {
    static let expected = "\"http://host:port/path\" or \"https://host:port/path\" (path of letters, digits, / . _ ~ -; default \(defaultPath))"

    static func parse(_ text: String) -> Result<HTTPEndpoint, ValueProblem> {
        guard let url = parseURL(text, schemes: ["http": 80, "https": 443]), url.userinfo == nil else {
            return .failure(.invalid(expected: expected))
        }
        return .success(HTTPEndpoint(tls: url.scheme == "https", address: url.address, path: url.path ?? defaultPath))
    }
}

extension ProxyConfig {
    static let expected = "\"http://[user:password@]host:port\" (userinfo %-escaped)"

    /// The proxy URL; the mode is set by the caller (`proxy_mode`, or the endpoint's default).
    static func parse(_ text: String, mode: Mode) -> Result<ProxyConfig, ValueProblem> {
        if text.lowercasedASCII().hasPrefix("https://") { return .failure(.notSupportedYet(feature: "a TLS (https://) proxy")) }
        guard let url = parseURL(text, schemes: ["http": 80]), url.path == nil || url.path == "/" else {
            return .failure(.invalid(expected: expected))
        }
        var proxy = ProxyConfig(address: url.address, mode: mode)
        if let userinfo = url.userinfo {
            let parts = userinfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let user = percentDecoded(String(parts[0])), !user.isEmpty else { return .failure(.invalid(expected: expected)) }
            proxy.username = user
            if parts.count == 2 {
                guard let password = percentDecoded(String(parts[1])) else { return .failure(.invalid(expected: expected)) }
                proxy.password = password
            }
        }
        return .success(proxy)
    }
}

/// `tls_pin_sha256` entries: base64 of a 32-byte SHA-256 of the server's SubjectPublicKeyInfo,
/// optionally written `sha256//…` as curl's `--pinnedpubkey` takes it.
func parseTLSPin(_ text: String) -> Result<[UInt8], ValueProblem> {
    let expected = "\"sha256//<base64 of the SHA-256 of the server's public key (SPKI)>\""
    let body = text.hasPrefix("sha256//") ? String(text.dropFirst("sha256//".count)) : text
    guard let bytes = Base64URL.decode(body), bytes.count == 32 else { return .failure(.invalid(expected: expected)) }
    return .success(bytes)
}

/// `recycle_bytes`: an integer, or a string with a `KiB`/`MiB`/`GiB` suffix.
func parseByteSize(_ text: String) -> UInt64? {
    let units: [(suffix: String, shift: UInt64)] = [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)]
    for unit in units where text.hasSuffix(unit.suffix) {
        guard let count = UInt64(text.dropLast(unit.suffix.count)), count > 0, count <= (UInt64.max >> unit.shift) else {
            return nil
        }
        return count << unit.shift
    }
    return UInt64(text).flatMap { $0 > 0 ? $0 : nil }
}
