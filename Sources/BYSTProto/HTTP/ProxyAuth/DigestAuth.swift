/// HTTP Digest (RFC 7616) on the client side: a proxy's challenge, kept to answer later
/// requests with the same nonce and a growing nonce count.
///
/// **Invariants**: `nonceCount` counts the answers given with `challenge.nonce` (the next is
/// `nonceCount + 1`); only `qop=auth` (or no qop, RFC 2069) is answered.
public struct DigestSession: Sendable, Equatable {
    public enum Algorithm: String, Sendable, Equatable, CaseIterable {
        case md5 = "MD5"
        case md5Session = "MD5-sess"
        case sha256 = "SHA-256"
        case sha256Session = "SHA-256-sess"

        var digest: LegacyDigest { self == .md5 || self == .md5Session ? .md5 : .sha256 }
        var isSession: Bool { self == .md5Session || self == .sha256Session }
        /// SHA-256 before MD5 (RFC 7616 §3.7: the client uses the strongest it supports).
        public var strength: Int { digest == .sha256 ? 2 : 1 }

        init?(token: String) {
            guard let match = Self.allCases.first(where: { HTTPSyntax.equalsIgnoringCase($0.rawValue, token) }) else { return nil }
            self = match
        }
    }

    public let realm: String
    public let nonce: String
    public let opaque: String?
    public let algorithm: Algorithm
    /// `qop="auth"` offered (else RFC 2069's response without nc and cnonce).
    public let qopAuth: Bool
    /// The proxy wants `username` hashed (RFC 7616 §3.4.4).
    public let userhash: Bool
    /// The proxy said our nonce was stale: a new nonce, the credentials were right.
    public let stale: Bool
    public private(set) var nonceCount: UInt32 = 0

    /// The Digest challenge's fields; nil with the reason if it cannot be answered.
    public init(challenge: ProxyAuthChallenge) throws(ProxyAuthError) {
        let p = challenge.parameters
        guard let realm = p["realm"], let nonce = p["nonce"], !nonce.isEmpty else {
            throw .malformedChallenge("Digest challenge without realm or nonce")
        }
        guard let algorithm = Algorithm(token: p["algorithm"] ?? "MD5") else {
            throw .malformedChallenge("Digest algorithm \(p["algorithm"] ?? "") not supported (MD5, SHA-256 and their -sess forms are)")
        }
        let qops = p["qop"].map { HTTPSyntax.listElements($0).map { HTTPSyntax.lowercasedASCII($0) } }
        guard qops == nil || qops?.contains("auth") == true else {
            throw .malformedChallenge("Digest qop \(p["qop"] ?? "") without \"auth\" (auth-int is not supported)")
        }
        self.realm = realm
        self.nonce = nonce
        opaque = p["opaque"]
        self.algorithm = algorithm
        qopAuth = qops != nil
        userhash = p["userhash"].map { HTTPSyntax.equalsIgnoringCase($0, "true") } ?? false
        stale = p["stale"].map { HTTPSyntax.equalsIgnoringCase($0, "true") } ?? false
    }

    /// The `Proxy-Authorization` value for `method target`, counting one more use of the nonce.
    /// `cnonce` is fresh per answer (the caller draws it from the secure RNG).
    public mutating func authorization(method: String, uri: String, credentials: ProxyCredentials, cnonce: String) throws(ProxyAuthError) -> String {
        nonceCount &+= 1
        let nc = String(nonceCount, radix: 16)
        let ncText = String(repeating: "0", count: max(0, 8 - nc.count)) + nc
        let response = try Self.response(
            algorithm: algorithm, credentials: credentials, realm: realm, nonce: nonce, method: method, uri: uri,
            qopAuth: qopAuth, nc: ncText, cnonce: cnonce)
        var fields: [String] = []
        do throws(CryptoError) {
            if userhash {
                fields.append("username=\(Self.quoted(try algorithm.digest.hex(credentials.user + ":" + realm)))")
            } else if Self.isQuotable(credentials.user) {
                fields.append("username=\(Self.quoted(credentials.user))")
            } else {
                fields.append("username*=UTF-8''\(Self.percentEncoded(credentials.user))")
            }
        } catch { throw .crypto("\(error)") }
        fields += ["realm=\(Self.quoted(realm))", "uri=\(Self.quoted(uri))", "algorithm=\(algorithm.rawValue)", "nonce=\(Self.quoted(nonce))"]
        if qopAuth { fields += ["nc=\(ncText)", "cnonce=\(Self.quoted(cnonce))", "qop=auth"] }
        fields.append("response=\(Self.quoted(response))")
        if let opaque { fields.append("opaque=\(Self.quoted(opaque))") }
        if userhash { fields.append("userhash=true") }
        return "Digest " + fields.joined(separator: ", ")
    }

    /// RFC 7616 §3.4.1: KD(H(A1), nonce:nc:cnonce:qop:H(A2)), A2 = method:uri.
    public static func response(
        algorithm: Algorithm, credentials: ProxyCredentials, realm: String, nonce: String, method: String, uri: String,
        qopAuth: Bool, nc: String, cnonce: String
    ) throws(ProxyAuthError) -> String {
        let h = algorithm.digest
        do throws(CryptoError) {
            var ha1 = try h.hex(credentials.user + ":" + realm + ":" + credentials.password)
            if algorithm.isSession { ha1 = try h.hex(ha1 + ":" + nonce + ":" + cnonce) }
            let ha2 = try h.hex(method + ":" + uri)
            return qopAuth
                ? try h.hex([ha1, nonce, nc, cnonce, "auth", ha2].joined(separator: ":"))
                : try h.hex([ha1, nonce, ha2].joined(separator: ":"))
        } catch { throw .crypto("\(error)") }
    }

    private static func isQuotable(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for character in text {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "\""
    }

    /// RFC 8187 ext-value: attr-chars kept, every other byte %XX.
    private static func percentEncoded(_ text: String) -> String {
        let kept = Set(Array("!#$&+-.^_`|~".utf8))
        return text.utf8.map { byte in
            (byte < 0x80 && (HTTPSyntax.isDigit(byte) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || kept.contains(byte)))
                ? String(decoding: [byte], as: UTF8.self)
                : "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xf, radix: 16, uppercase: true)
        }.joined()
    }
}
