/// Why a proxy's request for credentials could not be answered, or why it refused the
/// answer, in words for the log line (`DialFailureCause.proxyAuthRequired`).
public enum ProxyAuthError: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// A `Proxy-Authenticate` field we cannot read (or one too large to).
    case malformedChallenge(String)
    /// A 407 without any challenge.
    case noChallenge
    /// Only Negotiate (Kerberos/SPNEGO) offered.
    case negotiateOnly
    /// Nothing offered that BYST speaks (the schemes offered).
    case unsupported([String])
    /// The proxy asks for credentials and the config has none.
    case noCredentials(scheme: String)
    /// The proxy asked again after our answer: the credentials are wrong (or not allowed).
    case rejected(scheme: String, user: String)
    /// An NTLM challenge (Type 2) we cannot use.
    case malformedNTLM(String)
    /// NTLM is bound to one connection; the proxy closed it in the middle.
    case connectionClosed(scheme: String)
    case crypto(String)

    public var description: String {
        switch self {
        case .malformedChallenge(let detail): "unreadable Proxy-Authenticate: \(detail)"
        case .noChallenge: "HTTP 407 without a Proxy-Authenticate challenge"
        case .negotiateOnly: "proxy asks for Negotiate/Kerberos, which BYST does not support (Basic, Digest and NTLM are)"
        case .unsupported(let schemes): "proxy offers only \(schemes.joined(separator: ", ")), none of which BYST supports (Basic, Digest, NTLM)"
        case .noCredentials(let scheme): "proxy asks for \(scheme) credentials and none are configured (http_proxy user info or http_proxy_credentials_file)"
        case .rejected(let scheme, let user): "proxy refused the \(scheme) credentials of user \(user.debugDescription) (wrong user or password?)"
        case .malformedNTLM(let detail): "unusable NTLM challenge: \(detail)"
        case .connectionClosed(let scheme): "proxy closed the connection during the \(scheme) exchange (it must stay open for NTLM)"
        case .crypto(let detail): "proxy authentication: \(detail)"
        }
    }
}
