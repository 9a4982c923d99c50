import BYSTProto

/// Why an HTTP-carried link failed, in the words the link's log line uses.
enum HTTPTransportError: Error, CustomStringConvertible {
    /// The server (or a proxy on the way) answered with something other than 200; `refusal`
    /// is the hub's `BYST-Refusal` code if the answer carries one (PROTOCOL.md §6).
    case status(Int, String, refusal: String?)
    /// A proxy refused our CONNECT.
    case proxyRefused(Int, String)
    /// The proxy's request for credentials could not be answered, or it refused the answer.
    case proxyAuth(ProxyAuthError, proxy: String)
    /// The proxy passed a bodyless first leg on to the endpoint: it wants no credentials (the
    /// next connection sends none).
    case proxyPassedLeg(status: Int, proxy: String)
    /// The response was not HTTP we can read.
    case malformed(HTTPError)
    /// A split-mode upstream POST failed.
    case upstream(String)
    /// The response body ended, which a link's never does by itself.
    case bodyEnded
    /// A 101 answer that is not a WebSocket handshake for our key.
    case webSocket(String)

    var description: String {
        switch self {
        case .status(let code, let reason, let refusal):
            refusal.map { "HTTP \(code) \(reason) from the hub (\(BYSTRefusal.headerName): \($0))" }
                ?? (code == 407 ? "HTTP 407 \(reason): the proxy wants (other) credentials in http_proxy" : "HTTP \(code) \(reason)")
        case .proxyRefused(let code, let reason):
            "proxy refused CONNECT: HTTP \(code) \(reason)" + (code == 407 ? " (check the credentials in http_proxy)" : "")
        case .proxyAuth(let error, let proxy): "proxy \(proxy): \(error)"
        case .proxyPassedLeg(let status, let proxy):
            "proxy \(proxy) passed a request without credentials (HTTP \(status)): it needs none; the next connection sends none"
        case .malformed(let error): "malformed HTTP from the server or proxy: \(error)"
        case .upstream(let reason): "split-mode upstream: \(reason)"
        case .bodyEnded: "the server or a proxy ended the response body"
        case .webSocket(let reason): "WebSocket upgrade refused: \(reason)"
        }
    }
}
