import BYSTProto

/// How a dialed link reaches a peer's HTTP endpoint: which address to connect to, and the
/// request targets and headers that go with it (direct, or through a forward proxy).
struct HTTPRoute {
    let endpoint: HTTPEndpoint
    let proxy: ProxyConfig?

    /// The TCP connection goes to the proxy when there is one.
    var connectAddress: HostPort { proxy?.address ?? endpoint.address }
    var viaConnect: Bool { proxy?.mode == .connect }
    var viaForwardProxy: Bool { proxy?.mode == .forward }
    /// Where the connection goes, for naming the hop a failure happened at.
    var dialRoute: DialFailureClassifier.Route { DialFailureClassifier.Route(address: connectAddress, viaProxy: proxy != nil) }

    /// Origin-form, or absolute-form when a forward proxy must see where to go.
    func requestTarget(query: String? = nil) -> String {
        let path = endpoint.path + (query.map { "?" + $0 } ?? "")
        return viaForwardProxy ? "http://\(endpoint.authority)\(path)" : path
    }

    /// Headers every request of ours carries. Caches must not keep anything. The proxy's
    /// credentials, when it asks, are added by ProxyAuthSession.
    func requestHeaders() -> HTTPHeaders {
        HTTPHeaders([("Host", endpoint.authority), ("User-Agent", "byst/1"), ("Cache-Control", "no-cache, no-store")])
    }

    /// The CONNECT request that opens a tunnel to the endpoint.
    func connectRequest() -> HTTPRequestHead {
        HTTPRequestHead(method: "CONNECT", target: endpoint.authority, headers: HTTPHeaders([("Host", endpoint.authority), ("User-Agent", "byst/1")]))
    }
}
