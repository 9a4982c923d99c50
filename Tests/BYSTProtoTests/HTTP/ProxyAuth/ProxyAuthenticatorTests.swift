import Testing
@testable import BYSTProto

@Suite struct ProxyAuthenticatorTests {
    static let credentials = ProxyCredentials(user: "CORP\\byst", password: "s3cret")

    func offer(_ fields: String...) -> HTTPHeaders { HTTPHeaders(fields.map { ("Proxy-Authenticate", $0) }) }

    /// The parameters of a `Digest …` answer, read back with the challenge parser.
    func digestFields(_ header: String) throws -> [String: String] {
        try #require(ProxyAuthChallenge.parse(HTTPHeaders([("Proxy-Authenticate", header)])).first).parameters
    }

    @Test func nothingBeforeTheProxyAsks() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials)
        var exchange = ProxyAuthenticator.Exchange()
        #expect(try auth.opening(method: "GET", uri: "http://h/", exchange: &exchange) == nil)
    }

    @Test func digestAnsweredThenPreemptiveWithGrowingNonceCount() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials)
        var exchange = ProxyAuthenticator.Exchange()
        let challenge = offer("Basic realm=r", #"Digest realm="r", nonce="N1", qop="auth", algorithm=SHA-256"#)
        let answer = try auth.challenged(challenge, method: "POST", uri: "http://h/byst", exchange: &exchange, unixNanoseconds: 0)
        let fields = try digestFields(answer)
        #expect(answer.hasPrefix("Digest "))
        #expect(fields["nc"] == "00000001" && fields["nonce"] == "N1" && fields["algorithm"] == "SHA-256" && fields["uri"] == "http://h/byst")
        // The answer checks out against the RFC 7616 formula with its own cnonce.
        let expected = try DigestSession.response(algorithm: .sha256, credentials: Self.credentials, realm: "r", nonce: "N1", method: "POST",
                                                  uri: "http://h/byst", qopAuth: true, nc: "00000001", cnonce: try #require(fields["cnonce"]))
        #expect(fields["response"] == expected)
        // The next request, on any connection, answers preemptively with nc 2 and a fresh cnonce.
        var next = ProxyAuthenticator.Exchange()
        let preemptive = try #require(try auth.opening(method: "POST", uri: "http://h/byst?s=1", exchange: &next))
        let nextFields = try digestFields(preemptive)
        #expect(nextFields["nc"] == "00000002" && nextFields["cnonce"] != fields["cnonce"])
    }

    /// A streaming request's bodyless leg carries no Digest answer (it must draw a fresh
    /// challenge) but NTLM's Type 1; a proxy that passes such a leg needs no credentials, even
    /// after it asked for Digest before.
    @Test func bodylessLegsAndAProxyThatPassesThem() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials)
        var exchange = ProxyAuthenticator.Exchange()
        _ = try auth.challenged(offer(#"Digest realm="r", nonce="N1", qop="auth""#), method: "POST", uri: "http://h/byst",
                                exchange: &exchange, unixNanoseconds: 0)
        var leg = ProxyAuthenticator.Exchange()
        #expect(try auth.openingLeg(method: "POST", uri: "http://h/byst", exchange: &leg) == nil)
        #expect(try auth.opening(method: "POST", uri: "http://h/byst", exchange: &leg) != nil)
        auth.proxyPassedWithoutCredentials()
        #expect(auth.learned == .notRequired)
        #expect(try auth.opening(method: "POST", uri: "http://h/byst", exchange: &leg) == nil)

        var ntlm = ProxyAuthenticator(credentials: Self.credentials)
        var first = ProxyAuthenticator.Exchange()
        _ = try ntlm.challenged(offer("NTLM"), method: "POST", uri: "http://h/byst", exchange: &first, unixNanoseconds: 0)
        var next = ProxyAuthenticator.Exchange()
        let type1 = try #require(try ntlm.openingLeg(method: "POST", uri: "http://h/byst", exchange: &next))
        #expect(type1.hasPrefix("NTLM ") && next.awaitingNTLMChallenge)
    }

    @Test func secondChallengeAfterOurAnswerIsRejected() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials)
        var exchange = ProxyAuthenticator.Exchange()
        let challenge = offer(#"Digest realm="r", nonce="N1", qop="auth""#)
        _ = try auth.challenged(challenge, method: "GET", uri: "/", exchange: &exchange, unixNanoseconds: 0)
        #expect(throws: ProxyAuthError.rejected(scheme: "Digest (MD5)", user: "CORP\\byst")) {
            try auth.challenged(challenge, method: "GET", uri: "/", exchange: &exchange, unixNanoseconds: 0)
        }
    }

    @Test func staleNonceIsAnsweredAgainWithTheNewOne() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials)
        var exchange = ProxyAuthenticator.Exchange()
        _ = try auth.challenged(offer(#"Digest realm="r", nonce="N1", qop="auth""#), method: "GET", uri: "/", exchange: &exchange, unixNanoseconds: 0)
        let again = try auth.challenged(offer(#"Digest realm="r", nonce="N2", qop="auth", stale=true"#), method: "GET", uri: "/",
                                        exchange: &exchange, unixNanoseconds: 0)
        #expect(try digestFields(again)["nonce"] == "N2")
        #expect(try digestFields(again)["nc"] == "00000001")
        // Bounded: stale for ever is not answered for ever.
        #expect(throws: ProxyAuthError.self) {
            for round in 3...5 {
                _ = try auth.challenged(offer(#"Digest realm="r", nonce="N\#(round)", qop="auth", stale=true"#), method: "GET", uri: "/",
                                        exchange: &exchange, unixNanoseconds: 0)
            }
        }
    }

    /// A preemptive answer refused (the nonce went away) gets one fresh answer, not a verdict.
    @Test func preemptiveRefusedIsAnsweredFresh() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials)
        var first = ProxyAuthenticator.Exchange()
        _ = try auth.challenged(offer(#"Digest realm="r", nonce="N1", qop="auth""#), method: "GET", uri: "/", exchange: &first, unixNanoseconds: 0)
        var second = ProxyAuthenticator.Exchange()
        _ = try auth.opening(method: "GET", uri: "/", exchange: &second)
        let fresh = try auth.challenged(offer(#"Digest realm="r", nonce="N9", qop="auth""#), method: "GET", uri: "/", exchange: &second,
                                        unixNanoseconds: 0)
        #expect(try digestFields(fresh)["nonce"] == "N9")
    }

    @Test func ntlmHandshakeOnOneExchange() throws {
        var auth = ProxyAuthenticator(credentials: Self.credentials, workstation: "GW")
        var exchange = ProxyAuthenticator.Exchange()
        let type1 = try auth.challenged(offer("NTLM", "Basic realm=r"), method: "CONNECT", uri: "h:80", exchange: &exchange, unixNanoseconds: 0)
        #expect(type1 == "NTLM " + Base64URL.encode(NTLMMessages.negotiate(), urlSafe: false, padded: true))
        let type2 = Base64URL.encode(NTLMTests.challengeMessage, urlSafe: false, padded: true)
        let type3Header = try auth.challenged(offer("NTLM " + type2), method: "CONNECT", uri: "h:80", exchange: &exchange,
                                              unixNanoseconds: 1_700_000_000_000_000_000)
        let type3 = try #require(Base64URL.decode(String(type3Header.dropFirst("NTLM ".count))))
        #expect(NTLMMessages.read32(type3, 8) == 3)
        // User and domain split from CORP\byst, in UTF-16LE.
        let domainAt = Int(NTLMMessages.read32(type3, 32)), userAt = Int(NTLMMessages.read32(type3, 40))
        #expect(Array(type3[domainAt..<(domainAt + 8)]) == NTLMMessages.utf16LE("CORP"))
        #expect(Array(type3[userAt..<(userAt + 8)]) == NTLMMessages.utf16LE("byst"))
        // The NT response proves the password: recompute NTProofStr from its own temp.
        let ntLength = Int(NTLMMessages.read16(type3, 20)), ntAt = Int(NTLMMessages.read32(type3, 24))
        let nt = Array(type3[ntAt..<(ntAt + ntLength)])
        let key = try NTLMv2.ntowf(password: "s3cret", user: "byst", domain: "CORP")
        let proof = try LegacyDigest.md5.hmac(key: key, data: Hex.decode("0123456789abcdef")! + Array(nt[16...]))
        #expect(Array(nt.prefix(16)) == proof)
        // A bare NTLM offer after the Type 3: refused.
        #expect(throws: ProxyAuthError.rejected(scheme: "NTLM", user: "CORP\\byst")) {
            try auth.challenged(offer("NTLM"), method: "CONNECT", uri: "h:80", exchange: &exchange, unixNanoseconds: 0)
        }
        // Each new connection starts with Type 1.
        var next = ProxyAuthenticator.Exchange()
        #expect(try auth.opening(method: "CONNECT", uri: "h:80", exchange: &next) == type1)
        #expect(auth.connectionNeedsHandshake)
    }

    @Test func basicAndMissingCredentials() throws {
        var auth = ProxyAuthenticator(credentials: ProxyCredentials(user: "byst", password: "s3cret"))
        var exchange = ProxyAuthenticator.Exchange()
        #expect(try auth.challenged(offer("Basic realm=r"), method: "GET", uri: "/", exchange: &exchange, unixNanoseconds: 0) == "Basic YnlzdDpzM2NyZXQ=")
        var none = ProxyAuthenticator(credentials: nil)
        var other = ProxyAuthenticator.Exchange()
        #expect(throws: ProxyAuthError.noCredentials(scheme: "NTLM")) {
            try none.challenged(offer("NTLM"), method: "GET", uri: "/", exchange: &other, unixNanoseconds: 0)
        }
        #expect(throws: ProxyAuthError.negotiateOnly) {
            try auth.challenged(offer("Negotiate"), method: "GET", uri: "/", exchange: &other, unixNanoseconds: 0)
        }
    }
}
