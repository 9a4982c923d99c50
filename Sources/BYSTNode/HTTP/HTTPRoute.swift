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

    /// Headers every request of ours carries. Caches must not keep anything.
    func requestHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders([("Host", endpoint.authority), ("User-Agent", "byst/1"), ("Cache-Control", "no-cache, no-store")])
        if viaForwardProxy, let credentials = proxyAuthorization { headers.add("Proxy-Authorization", credentials) }
        return headers
    }

    /// `Basic base64(user:password)` (RFC 7617), if the proxy URL has credentials.
    var proxyAuthorization: String? {
        guard let proxy, let user = proxy.username else { return nil }
        let pair = user + ":" + (proxy.password ?? "")
        return "Basic " + Base64URL.encode(Array(pair.utf8), urlSafe: false, padded: true)
    }

    /// The CONNECT request that opens a tunnel to the endpoint.
    func connectRequest() -> HTTPRequestHead {
        var headers = HTTPHeaders([("Host", endpoint.authority), ("User-Agent", "byst/1")])
        if let credentials = proxyAuthorization { headers.add("Proxy-Authorization", credentials) }
        return HTTPRequestHead(method: "CONNECT", target: endpoint.authority, headers: headers)
    }
}
