/// Answers a forward proxy's requests for credentials (HTTP 407, RFC 9110 §11.7.1), for every
/// request a node sends through it: CONNECT, absolute-URI requests. Sans-IO: the NIO drivers
/// (ProxyConnectHandler, HTTPRequestOpener, SplitUpstream) feed it 407 heads and write what
/// it answers.
///
///   first request ─ no credentials ─▶ 407 + offers ─▶ strongest (ProxyAuthChoice)
///     Basic / Digest: the same request with the answer; later requests answer preemptively
///                     (Digest: the proxy's nonce with the next nonce count), except a
///                     streaming request's bodyless leg, which draws a fresh challenge
///                     (`openingLeg`)
///     NTLM:           Type 1 ─▶ 407 + Type 2 ─▶ Type 3, all on one connection; each new
///                     connection does it again
///   407 again after an answer to this request's own challenge ─▶ `rejected` (wrong credentials)
///   Digest with stale=true ─▶ answered again with the new nonce
///
/// One per proxy and node state (the learned scheme, the Digest nonce) is shared by its
/// connections; each request's exchange is an `Exchange`.
///
/// **Invariants**: no credentials go out before the proxy asked for a scheme (so a proxy that
/// wants Digest never sees the password in Basic); an exchange takes at most `maxRounds` 407s.
public struct ProxyAuthenticator: Sendable {
    public enum Learned: Sendable, Equatable {
        case unknown
        case basic
        case digest(DigestSession)
        case ntlm
        /// It passed a request without credentials.
        case notRequired
    }

    /// One request's conversation with the proxy on one connection.
    public struct Exchange: Sendable {
        /// 407s answered so far.
        var rounds = 0
        /// The scheme of an answer computed from a challenge of this exchange.
        var answered: String?
        /// Sent an NTLM Type 1; a Type 2 must come back.
        public internal(set) var awaitingNTLMChallenge = false
        public init() {}

        /// The proxy challenged this request at least once.
        public var wasChallenged: Bool { rounds > 0 }

        /// In an NTLM handshake (which must keep its connection).
        public var isNTLM: Bool { awaitingNTLMChallenge || answered == "NTLM" }
    }

    public static let maxRounds = 3

    public let credentials: ProxyCredentials?
    /// A name for this host in NTLM's Type 3 (proxies log it).
    public let workstation: String
    public private(set) var learned: Learned = .unknown

    public init(credentials: ProxyCredentials?, workstation: String = "BYST") {
        self.credentials = credentials
        self.workstation = workstation
    }

    /// Whether a request on a connection that has not authenticated yet needs a bodyless
    /// first leg: NTLM's Type 1 always does (its answer is a 407).
    public var connectionNeedsHandshake: Bool { learned == .ntlm }

    /// The `Proxy-Authorization` a new request carries before any 407 on its connection:
    /// Basic or Digest once the proxy asked for them, NTLM's Type 1 once it asked for NTLM
    /// (`exchange` then expects the Type 2); nil before the proxy asked for anything.
    public mutating func opening(method: String, uri: String, exchange: inout Exchange) throws(ProxyAuthError) -> String? {
        guard let credentials else { return nil }
        switch learned {
        case .unknown, .notRequired: return nil
        case .basic: return Self.basic(credentials)
        case .digest(var session):
            let header = try session.authorization(method: method, uri: uri, credentials: credentials, cnonce: try Self.cnonce())
            learned = .digest(session)
            return header
        case .ntlm:
            exchange.awaitingNTLMChallenge = true
            return "NTLM " + Base64URL.encode(NTLMMessages.negotiate(), urlSafe: false, padded: true)
        }
    }

    /// The `Proxy-Authorization` of a bodyless first leg (a request whose body will stream goes
    /// first without it): NTLM's Type 1 once the proxy asked for NTLM, otherwise none. Not a
    /// preemptive Digest answer: the leg must draw the 407 whose fresh nonce answers the real
    /// request, or the proxy would pass the bodyless leg on to the hub.
    public mutating func openingLeg(method: String, uri: String, exchange: inout Exchange) throws(ProxyAuthError) -> String? {
        guard learned == .ntlm else { return nil }
        return try opening(method: method, uri: uri, exchange: &exchange)
    }

    /// A 407 to `method uri`: the `Proxy-Authorization` to send the request again with (on the
    /// same connection), or why not. `unixNanoseconds`: now, for NTLMv2's time stamp.
    public mutating func challenged(
        _ headers: HTTPHeaders, method: String, uri: String, exchange: inout Exchange, unixNanoseconds: UInt64
    ) throws(ProxyAuthError) -> String {
        exchange.rounds += 1
        let challenges = try ProxyAuthChallenge.parse(headers)
        let user = credentials?.user ?? ""
        if exchange.awaitingNTLMChallenge {
            exchange.awaitingNTLMChallenge = false
            guard let token = challenges.first(where: { $0.scheme == "ntlm" })?.token68 else {
                // A bare `NTLM` offer again: the proxy dropped the handshake (or refused Type 1).
                throw .rejected(scheme: "NTLM", user: user)
            }
            exchange.answered = "NTLM"
            return try ntlmAuthenticate(token, unixNanoseconds: unixNanoseconds)
        }
        let choice = try ProxyAuthChoice.strongest(of: challenges)
        if let scheme = exchange.answered {
            // Asked again after our answer to its own challenge: wrong credentials, unless
            // Digest only found the nonce stale.
            guard case .digest(let session) = choice, session.stale, exchange.rounds <= Self.maxRounds else {
                throw .rejected(scheme: scheme, user: user)
            }
        }
        guard exchange.rounds <= Self.maxRounds else { throw .rejected(scheme: choice.schemeName, user: user) }
        guard let credentials else { throw .noCredentials(scheme: choice.schemeName) }
        exchange.answered = choice.schemeName
        switch choice {
        case .basic:
            learned = .basic
            return Self.basic(credentials)
        case .digest(var session):
            let header = try session.authorization(method: method, uri: uri, credentials: credentials, cnonce: try Self.cnonce())
            learned = .digest(session)
            return header
        case .ntlm:
            learned = .ntlm
            exchange.answered = nil
            exchange.awaitingNTLMChallenge = true
            return "NTLM " + Base64URL.encode(NTLMMessages.negotiate(), urlSafe: false, padded: true)
        }
    }

    /// The proxy passed on a request that carried no answer (a bodyless leg: nothing, or
    /// NTLM's Type 1): it needs none, whatever it asked for before (a proxy may trust a client
    /// once it logged in, or let some destinations through); it asks again if that changes.
    public mutating func proxyPassedWithoutCredentials() {
        learned = .notRequired
    }

    /// The scheme learned, for messages.
    public var learnedSchemeName: String {
        switch learned {
        case .unknown, .notRequired: "none"
        case .basic: "Basic"
        case .digest(let session): "Digest (\(session.algorithm.rawValue))"
        case .ntlm: "NTLM"
        }
    }

    private func ntlmAuthenticate(_ token: String, unixNanoseconds: UInt64) throws(ProxyAuthError) -> String {
        guard let credentials else { throw .noCredentials(scheme: "NTLM") }
        guard let bytes = Base64URL.decode(token) else { throw .malformedNTLM("not base64") }
        let challenge = try NTLMMessages.parseChallenge(bytes)
        let account = credentials.ntlmAccount
        let key = try NTLMv2.ntowf(password: credentials.password, user: account.user, domain: account.domain)
        let clientChallenge: [UInt8]
        do throws(CryptoError) { clientChallenge = try SecureRandom.bytes(8) } catch { throw .crypto("\(error)") }
        let time = challenge.timestamp ?? NTLMv2.fileTime(unixNanoseconds: unixNanoseconds)
        var responses = try NTLMv2.responses(
            key: key, serverChallenge: challenge.serverChallenge, clientChallenge: clientChallenge, time: time,
            targetInfo: challenge.targetInfo)
        // With the proxy's own time stamp, the LMv2 response is left empty (MS-NLMP §3.1.5.1.2).
        if challenge.timestamp != nil { responses.lm = [UInt8](repeating: 0, count: 24) }
        let message = NTLMMessages.authenticate(
            flags: NTLMMessages.authenticateFlags(challenge: challenge.flags), lmResponse: responses.lm, ntResponse: responses.nt,
            domain: account.domain, user: account.user, workstation: workstation)
        return "NTLM " + Base64URL.encode(message, urlSafe: false, padded: true)
    }

    static func basic(_ credentials: ProxyCredentials) -> String {
        "Basic " + Base64URL.encode(Array((credentials.user + ":" + credentials.password).utf8), urlSafe: false, padded: true)
    }

    /// 16 random bytes, base64: a client nonce (RFC 7616 §3.4).
    static func cnonce() throws(ProxyAuthError) -> String {
        do throws(CryptoError) { return Base64URL.encode(try SecureRandom.bytes(16)) } catch { throw .crypto("\(error)") }
    }
}
