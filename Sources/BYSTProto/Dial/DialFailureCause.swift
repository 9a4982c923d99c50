/// Why one dialed link did not come up (it failed before its handshake completed), in terms
/// an operator can act on. The node classifies each failed attempt (`DialFailureClassifier`
/// in BYSTNode) and `DialFailureLog` decides what reaches the log.
///
/// Two failures with equal causes are "the same problem": so the associated values are what
/// stays the same from one attempt to the next (a host name, the address dialed), never
/// something that changes per attempt (a local port, a time).
public enum DialFailureCause: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Where a connection went: the peer's endpoint, or the proxy in front of it.
    public enum Hop: String, Sendable, Hashable {
        case endpoint
        case proxy
    }

    /// getaddrinfo found no address for the name.
    case nameNotResolved(host: String, hop: Hop)
    /// TCP connect refused (RST): nothing listens there, or a firewall rejects.
    case refused(address: String, hop: Hop)
    /// TCP connect got no answer in time (a firewall dropping, a host down).
    case timedOut(address: String, hop: Hop)
    /// The connection came up but no handshake answer arrived in time.
    case handshakeTimedOut(address: String)
    /// HTTP 407 from the proxy: credentials missing or wrong.
    case proxyAuthRequired(status: Int)
    /// The proxy asked for credentials and refused ours, or asked in a way BYST cannot answer
    /// (`reason`: ProxyAuthError's words, naming the scheme).
    case proxyAuthFailed(proxy: String, reason: String)
    /// HTTP 403 without the hub's `BYST-Refusal` marker: a proxy (or something else on the
    /// way) forbids the request or the CONNECT.
    case proxyForbidden(connect: Bool)
    /// The hub refused the key: an answer with `BYST-Refusal: unknown-key`.
    case hubRefusedKey
    /// The hub (or whatever answers at the endpoint) closed the connection during the
    /// handshake without a word: how a raw or WebSocket link sees its key refused.
    case closedDuringHandshake
    /// The hub refused the request for another reason (its `BYST-Refusal` code, status).
    case hubRefused(code: String, status: Int)
    /// Another HTTP status, without the marker (a proxy, or something else at the endpoint).
    case httpStatus(Int, reason: String)
    /// TLS did not come up: certificate, pin, name or protocol.
    case tlsFailed(reason: String)
    /// An HTTP mode of `auto` got no answer in time (a proxy holding the request).
    case transportNotPassing(mode: String)
    /// Anything else, in the words of the error.
    case other(String)

    /// Credentials and keys: an operator must change something, so these are warnings; the
    /// rest may heal by itself (a hub restarting, a network coming back).
    public var isAuthProblem: Bool {
        switch self {
        case .proxyAuthRequired, .proxyAuthFailed, .proxyForbidden, .hubRefusedKey, .closedDuringHandshake, .tlsFailed: true
        default: false
        }
    }

    /// Whether the failure says nothing about the HTTP mode used: `auto` must not give up a
    /// mode because a name did not resolve, a proxy wants credentials or the hub refused the
    /// key or the handshake (the link's bytes reached the hub's handshake, so the mode passed).
    /// Other hub refusals do concern the mode: a proxy that drops `Upgrade` turns a WebSocket
    /// request into a GET the hub refuses with `bad-request`.
    public var isIndependentOfHTTPMode: Bool {
        switch self {
        case .nameNotResolved, .refused, .timedOut, .proxyAuthRequired, .proxyAuthFailed, .hubRefusedKey, .tlsFailed: true
        case .hubRefused(let code, _): code == BYSTRefusal.handshakeFailed.rawValue
        default: false
        }
    }

    public var description: String {
        switch self {
        case .nameNotResolved(let host, let hop): "name not resolved: \(host)\(hop.note)"
        case .refused(let address, let hop): "connection refused by \(address)\(hop.note)"
        case .timedOut(let address, let hop): "connect to \(address)\(hop.note) timed out"
        case .handshakeTimedOut(let address): "no handshake answer from \(address) in time"
        case .proxyAuthRequired(let status):
            "HTTP \(status) from the proxy: it wants (other) credentials (http_proxy or http_proxy_credentials_file)"
        case .proxyAuthFailed(let proxy, let reason): "HTTP 407 from the proxy \(proxy): \(reason)"
        case .proxyForbidden(let connect):
            "HTTP 403 without \(BYSTRefusal.headerName): a proxy forbids the \(connect ? "CONNECT" : "request")"
        case .hubRefusedKey: "the hub refused the key (\(BYSTRefusal.headerName): \(BYSTRefusal.unknownKey.rawValue)): the two ends hold different keys"
        case .closedDuringHandshake: "the remote end closed the connection during the handshake (a key it does not have?)"
        case .hubRefused(let code, let status): "the hub refused the request: HTTP \(status), \(BYSTRefusal.headerName): \(code)"
        case .httpStatus(let status, let reason): "HTTP \(status) \(reason) (without \(BYSTRefusal.headerName): not from the hub)"
        case .tlsFailed(let reason): "TLS failed: \(reason)"
        case .transportNotPassing(let mode): "HTTP \(mode) mode did not get through (no answer in time: a proxy holding the request?)"
        case .other(let text): text
        }
    }
}

extension DialFailureCause.Hop {
    fileprivate var note: String { self == .proxy ? " (the proxy)" : "" }
}
