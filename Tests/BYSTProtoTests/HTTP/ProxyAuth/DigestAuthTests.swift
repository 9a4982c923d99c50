import Testing
@testable import BYSTProto

@Suite struct DigestAuthTests {
    static let mufasa = ProxyCredentials(user: "Mufasa", password: "Circle of Life")
    static let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    static let opaque = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    static let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

    /// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
    @Test(arguments: [
        (DigestSession.Algorithm.md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (.sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ])
    func rfc7616Example(algorithm: DigestSession.Algorithm, expected: String) throws {
        let response = try DigestSession.response(
            algorithm: algorithm, credentials: Self.mufasa, realm: "http-auth@example.org", nonce: Self.nonce,
            method: "GET", uri: "/dir/index.html", qopAuth: true, nc: "00000001", cnonce: Self.cnonce)
        #expect(response == expected)
    }

    @Test func authorizationHeaderCountsNonceUses() throws {
        let challenge = ProxyAuthChallenge(scheme: "Digest", parameters: [
            "realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "SHA-256", "nonce": Self.nonce, "opaque": Self.opaque,
        ])
        var session = try DigestSession(challenge: challenge)
        let first = try session.authorization(method: "GET", uri: "/dir/index.html", credentials: Self.mufasa, cnonce: Self.cnonce)
        #expect(first.hasPrefix("Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm=SHA-256"))
        #expect(first.contains("nc=00000001, cnonce=\"\(Self.cnonce)\", qop=auth, response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""))
        #expect(first.contains("opaque=\"\(Self.opaque)\""))
        let second = try session.authorization(method: "GET", uri: "/dir/index.html", credentials: Self.mufasa, cnonce: Self.cnonce)
        #expect(second.contains("nc=00000002"))
        #expect(!second.contains("753927fa"))
    }

    @Test func sessionAlgorithmHashesNonceIntoA1() throws {
        let plain = try DigestSession.response(algorithm: .md5, credentials: Self.mufasa, realm: "r", nonce: "n", method: "GET",
                                               uri: "/", qopAuth: true, nc: "00000001", cnonce: "c")
        let sess = try DigestSession.response(algorithm: .md5Session, credentials: Self.mufasa, realm: "r", nonce: "n", method: "GET",
                                              uri: "/", qopAuth: true, nc: "00000001", cnonce: "c")
        #expect(plain != sess)
        // MD5-sess by hand: H(H(user:realm:pass):nonce:cnonce) as HA1.
        let h = LegacyDigest.md5
        let ha1 = try h.hex(try h.hex("Mufasa:r:Circle of Life") + ":n:c")
        #expect(sess == (try h.hex("\(ha1):n:00000001:c:auth:\(try h.hex("GET:/"))")))
    }

    @Test func userhashAndUnquotableNames() throws {
        var session = try DigestSession(challenge: ProxyAuthChallenge(scheme: "digest", parameters: [
            "realm": "api@example.org", "nonce": "x", "qop": "auth", "algorithm": "SHA-256", "userhash": "true",
        ]))
        let header = try session.authorization(method: "GET", uri: "/", credentials: Self.mufasa, cnonce: "c")
        #expect(header.contains("username=\"\(try LegacyDigest.sha256.hex("Mufasa:api@example.org"))\""))
        #expect(header.hasSuffix("userhash=true"))
        var plain = try DigestSession(challenge: ProxyAuthChallenge(scheme: "digest", parameters: ["realm": "r", "nonce": "x"]))
        let j = try plain.authorization(method: "GET", uri: "/", credentials: ProxyCredentials(user: "Jäsön", password: "p"), cnonce: "c")
        #expect(j.hasPrefix("Digest username*=UTF-8''J%C3%A4s%C3%B6n, "))
        #expect(!j.contains("qop="))  // RFC 2069 form when the proxy offers no qop
    }

    @Test func unanswerableChallenges() {
        #expect(throws: ProxyAuthError.self) { try DigestSession(challenge: ProxyAuthChallenge(scheme: "digest", parameters: ["realm": "r"])) }
        #expect(throws: ProxyAuthError.self) {
            try DigestSession(challenge: ProxyAuthChallenge(scheme: "digest", parameters: ["realm": "r", "nonce": "n", "qop": "auth-int"]))
        }
        #expect(throws: ProxyAuthError.self) {
            try DigestSession(challenge: ProxyAuthChallenge(scheme: "digest", parameters: ["realm": "r", "nonce": "n", "algorithm": "SHA-512-256"]))
        }
    }
}
