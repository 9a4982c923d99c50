/// One challenge of a `Proxy-Authenticate` field (RFC 9110 §11.6.1):
/// `scheme [token68 | name=value, …]`. A field may hold several challenges, and a response
/// several fields; `parse` reads them all.
///
/// **Invariants**: `scheme` and parameter names are lower-cased; names are unique within a
/// challenge; values are unquoted (`\x` escapes resolved). At most `maxChallenges`
/// challenges of at most `maxParameters` parameters each, from at most `maxBytes` of fields.
public struct ProxyAuthChallenge: Sendable, Equatable {
    public let scheme: String
    public let token68: String?
    public let parameters: [String: String]

    public static let maxChallenges = 16
    public static let maxParameters = 32
    public static let maxBytes = 16 << 10

    public init(scheme: String, token68: String? = nil, parameters: [String: String] = [:]) {
        self.scheme = HTTPSyntax.lowercasedASCII(scheme)
        self.token68 = token68
        self.parameters = parameters
    }

    /// Every challenge of every `Proxy-Authenticate` field in `headers`, in order.
    public static func parse(_ headers: HTTPHeaders) throws(ProxyAuthError) -> [ProxyAuthChallenge] {
        let fields = headers.values("Proxy-Authenticate")
        guard fields.reduce(0, { $0 + $1.utf8.count }) <= maxBytes else { throw .malformedChallenge("Proxy-Authenticate over \(maxBytes) bytes") }
        var challenges: [ProxyAuthChallenge] = []
        for field in fields {
            var scanner = ChallengeScanner(Array(field.utf8))
            try scanner.read(into: &challenges)
        }
        return challenges
    }
}

/// Reads the challenges of one field: `#challenge`, where a comma either separates the
/// parameters of one challenge or starts the next (a token not followed by `=`).
private struct ChallengeScanner {
    let bytes: [UInt8]
    var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func read(into challenges: inout [ProxyAuthChallenge]) throws(ProxyAuthError) {
        var current: (scheme: String, token68: String?, parameters: [String: String])?
        func finish() {
            if let current { challenges.append(ProxyAuthChallenge(scheme: current.scheme, token68: current.token68, parameters: current.parameters)) }
        }
        while true {
            skipSeparators()
            guard at < bytes.count else { break }
            let token = try readToken()
            skipSpaces()
            if peek == UInt8(ascii: "="), var challenge = current, challenge.token68 == nil {
                at += 1
                skipSpaces()
                let name = HTTPSyntax.lowercasedASCII(token)
                guard challenge.parameters[name] == nil else { throw .malformedChallenge("parameter \(name) given twice") }
                guard challenge.parameters.count < ProxyAuthChallenge.maxParameters else {
                    throw .malformedChallenge("over \(ProxyAuthChallenge.maxParameters) parameters")
                }
                challenge.parameters[name] = try readValue()
                current = challenge
            } else {
                // A new challenge: `token` is its scheme; a token68 may follow.
                finish()
                guard challenges.count < ProxyAuthChallenge.maxChallenges else {
                    throw .malformedChallenge("over \(ProxyAuthChallenge.maxChallenges) challenges")
                }
                current = (token, nil, [:])
                guard let token68 = readToken68() else { continue }  // parameters follow, if any
                current?.token68 = token68
            }
            skipSpaces()
            guard at == bytes.count || peek == UInt8(ascii: ",") else {
                throw .malformedChallenge("unexpected \(String(decoding: [bytes[at]], as: UTF8.self).debugDescription) at byte \(at)")
            }
        }
        finish()
    }

    private var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    private mutating func skipSpaces() {
        while let byte = peek, byte == 0x20 || byte == 0x09 { at += 1 }
    }

    private mutating func skipSeparators() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == UInt8(ascii: ",") { at += 1 }
    }

    private mutating func readToken() throws(ProxyAuthError) -> String {
        let start = at
        while let byte = peek, HTTPSyntax.isTokenByte(byte) { at += 1 }
        guard at > start else { throw .malformedChallenge("expected a token at byte \(start)") }
        return String(decoding: bytes[start..<at], as: UTF8.self)
    }

    /// `token68` after a scheme: its characters then only `=`, and then the end or a comma.
    private mutating func readToken68() -> String? {
        var end = at
        func isToken68(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a)
                || [UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/")].contains(byte)
        }
        while end < bytes.count, isToken68(bytes[end]) { end += 1 }
        guard end > at else { return nil }
        var tail = end
        while tail < bytes.count, bytes[tail] == UInt8(ascii: "=") { tail += 1 }
        var after = tail
        while after < bytes.count, bytes[after] == 0x20 || bytes[after] == 0x09 { after += 1 }
        // `name=value` (a parameter), not a token68, when a value follows the `=`.
        guard after == bytes.count || bytes[after] == UInt8(ascii: ",") else { return nil }
        defer { at = tail }
        return String(decoding: bytes[at..<tail], as: UTF8.self)
    }

    private mutating func readValue() throws(ProxyAuthError) -> String {
        guard peek == UInt8(ascii: "\"") else { return try readToken() }
        at += 1
        var value: [UInt8] = []
        while let byte = peek {
            at += 1
            switch byte {
            case UInt8(ascii: "\""): return String(decoding: value, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = peek else { throw .malformedChallenge("quoted string ends in a backslash") }
                at += 1
                value.append(escaped)
            default:
                guard byte == 0x09 || byte >= 0x20, byte != 0x7f else { throw .malformedChallenge("control byte in a quoted string") }
                value.append(byte)
            }
        }
        throw .malformedChallenge("unterminated quoted string")
    }
}
