/// Which of a proxy's offers BYST answers: the strongest it speaks, Digest SHA-256, then
/// Digest MD5, then NTLM (v2), then Basic. Negotiate (Kerberos/SPNEGO) is not spoken.
public enum ProxyAuthChoice: Sendable, Equatable {
    case digest(DigestSession)
    case ntlm
    case basic

    public var schemeName: String {
        switch self {
        case .digest(let session): "Digest (\(session.algorithm.rawValue))"
        case .ntlm: "NTLM"
        case .basic: "Basic"
        }
    }

    /// The strongest answerable offer. A Digest challenge we cannot answer (auth-int only, an
    /// unknown algorithm) is skipped if something else is offered.
    public static func strongest(of challenges: [ProxyAuthChallenge]) throws(ProxyAuthError) -> ProxyAuthChoice {
        guard !challenges.isEmpty else { throw .noChallenge }
        var digests: [DigestSession] = []
        var digestProblem: ProxyAuthError?
        for challenge in challenges where challenge.scheme == "digest" {
            do throws(ProxyAuthError) { digests.append(try DigestSession(challenge: challenge)) } catch { digestProblem = error }
        }
        if let best = digests.max(by: { $0.algorithm.strength < $1.algorithm.strength }) { return .digest(best) }
        let schemes = Set(challenges.map(\.scheme))
        if schemes.contains("ntlm") { return .ntlm }
        if schemes.contains("basic") { return .basic }
        if let digestProblem { throw digestProblem }
        if schemes.contains("negotiate") || schemes.contains("kerberos") { throw .negotiateOnly }
        throw .unsupported(challenges.map(\.scheme))
    }
}
