import Testing
@testable import BYSTProto

@Suite struct ProxyAuthChallengeTests {
    func parse(_ fields: String...) throws(ProxyAuthError) -> [ProxyAuthChallenge] {
        try ProxyAuthChallenge.parse(HTTPHeaders(fields.map { ("Proxy-Authenticate", $0) }))
    }

    @Test func severalChallengesInOneFieldAndSeveralFields() throws {
        let challenges = try parse(
            #"Digest realm="x, y", nonce="a\"b", qop="auth,auth-int", algorithm=SHA-256, Basic realm=byst"#,
            "NTLM", "Negotiate TlRMTVNTUAABAAAAB4IIog==")
        #expect(challenges == [
            ProxyAuthChallenge(scheme: "digest", parameters: ["realm": "x, y", "nonce": "a\"b", "qop": "auth,auth-int", "algorithm": "SHA-256"]),
            ProxyAuthChallenge(scheme: "basic", parameters: ["realm": "byst"]),
            ProxyAuthChallenge(scheme: "ntlm"),
            ProxyAuthChallenge(scheme: "negotiate", token68: "TlRMTVNTUAABAAAAB4IIog=="),
        ])
    }

    @Test func squidStyleFields() throws {
        let challenges = try parse(#"Digest realm="byst-test", nonce="TtWbaAAAAAAA8Jj0AAAAAFe+RQAAAAAA", qop="auth", stale=false"#,
                                   "NTLM TlRMTVNTUAACAAAA", "Basic realm=\"byst-test\"")
        #expect(challenges.map(\.scheme) == ["digest", "ntlm", "basic"])
        #expect(challenges[0].parameters["stale"] == "false")
        #expect(challenges[1].token68 == "TlRMTVNTUAACAAAA")
    }

    @Test(arguments: [
        #"Digest realm="unterminated"#,
        "Digest realm=\"a\u{01}b\"",
        "Digest realm=a realm=b",
        "Digest realm=a, realm=b",
        "Basic =x",
        "Digest realm=\"x\\",
        "Digest realm=\"x\" junk",
        "=",
    ])
    func malformedFieldsThrow(field: String) {
        #expect(throws: ProxyAuthError.self) { try parse(field) }
    }

    @Test func oversizedInputThrowsInsteadOfGrowing() {
        let many = (0..<40).map { "S\($0)" }.joined(separator: ", ")
        #expect(throws: ProxyAuthError.self) { try parse(many) }
        let params = "Digest " + (0..<40).map { "p\($0)=v" }.joined(separator: ", ")
        #expect(throws: ProxyAuthError.self) { try parse(params) }
        #expect(throws: ProxyAuthError.self) { try parse("Basic realm=\"" + String(repeating: "a", count: 20_000) + "\"") }
    }

    /// Any bytes at all: an error or challenges, never a crash.
    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 7)
        let alphabet = Array(#"aZ09 ,="\=/+.-_~;"#.utf8) + [0x09, 0x7f, 0xc3]
        for _ in 0..<2000 {
            let length = Int(rng.next() % 60)
            let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            _ = try? parse(String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func choiceIsStrongestFirst() throws {
        func choose(_ fields: String...) throws(ProxyAuthError) -> String {
            try ProxyAuthChoice.strongest(of: ProxyAuthChallenge.parse(HTTPHeaders(fields.map { ("Proxy-Authenticate", $0) }))).schemeName
        }
        #expect(try choose("Basic realm=r", "NTLM", #"Digest realm="r", nonce="n", qop="auth""#,
                           #"Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256"#) == "Digest (SHA-256)")
        #expect(try choose("Basic realm=r", #"Digest realm="r", nonce="n""#) == "Digest (MD5)")
        #expect(try choose("Basic realm=r", "NTLM", "Negotiate") == "NTLM")
        #expect(try choose("Negotiate", "Basic realm=r") == "Basic")
        // An auth-int-only Digest is skipped when something else is offered.
        #expect(try choose(#"Digest realm="r", nonce="n", qop="auth-int""#, "Basic realm=r") == "Basic")
        #expect(throws: ProxyAuthError.negotiateOnly) { try choose("Negotiate") }
        #expect(throws: ProxyAuthError.negotiateOnly) { try choose("Negotiate, Kerberos") }
        #expect(throws: ProxyAuthError.unsupported(["bearer"])) { try choose("Bearer realm=x") }
        #expect(throws: ProxyAuthError.noChallenge) { try choose() }
        #expect(ProxyAuthError.negotiateOnly.description == "proxy asks for Negotiate/Kerberos, which BYST does not support (Basic, Digest and NTLM are)")
    }
}
