import BYSTProto
import Glibc

/// `http_proxy = "env"`: the proxy for an endpoint taken from the environment the way curl
/// takes it (docs/OPERATIONS.md, "Proxy from the environment"):
///
///   http://  endpoint: `http_proxy`, then `all_proxy`, then `ALL_PROXY`
///   https:// endpoint: `https_proxy`, then `HTTPS_PROXY`, then `all_proxy`, then `ALL_PROXY`
///   either, first:     a host matched by `no_proxy` (else `NO_PROXY`) goes direct
///
/// Upper-case `HTTP_PROXY` is ignored, as curl ignores it: CGI-style servers set it from a
/// request's `Proxy:` header ("httpoxy"), so it cannot be trusted to come from the operator.
/// Empty variables count as unset. A value without a scheme is `http://`.
///
/// **Invariants**: the proxies are parsed (the loader refuses a value that does not parse),
/// with a placeholder mode that `proxy(for:)` replaces.
public struct EnvironmentProxy: Sendable, Equatable {
    /// Which variable each proxy came from, for logs and errors.
    public struct Source: Sendable, Equatable {
        public var variable: String
        public var proxy: ProxyConfig
    }

    public var http: Source?
    public var https: Source?
    public var all: Source?
    public var noProxy: NoProxyList
    /// `proxy_mode` when the config sets it; else forward for http://, connect for https://.
    public var explicitMode: ProxyConfig.Mode?

    /// The variables read, in the order of precedence within each role.
    static let httpNames = ["http_proxy"]
    static let httpsNames = ["https_proxy", "HTTPS_PROXY"]
    static let allNames = ["all_proxy", "ALL_PROXY"]
    static let noProxyNames = ["no_proxy", "NO_PROXY"]

    /// Reads the variables through `lookup`; fails on the first set one that is no proxy URL.
    static func read(explicitMode: ProxyConfig.Mode?, lookup: (String) -> String?)
        -> Result<EnvironmentProxy, EnvironmentProxyProblem> {
        func first(_ names: [String]) -> (name: String, value: String)? {
            for name in names {
                if let value = lookup(name)?.trimmingASCIIWhitespace(), !value.isEmpty { return (name, value) }
            }
            return nil
        }
        func source(_ names: [String]) -> Result<Source?, EnvironmentProxyProblem> {
            guard let (name, value) = first(names) else { return .success(nil) }
            let url = value.contains("://") ? value : "http://\(value)"
            switch ProxyConfig.parse(url, mode: .forward) {
            case .success(let proxy): return .success(Source(variable: name, proxy: proxy))
            case .failure(let problem): return .failure(EnvironmentProxyProblem(variable: name, problem: problem))
            }
        }
        let noProxy = first(noProxyNames).map { NoProxyList($0.value) } ?? NoProxyList("")
        return source(httpNames).flatMap { http in
            source(httpsNames).flatMap { https in
                source(allNames).map { all in
                    EnvironmentProxy(http: http, https: https, all: all, noProxy: noProxy, explicitMode: explicitMode)
                }
            }
        }
    }

    /// This process's environment.
    static func fromProcess(explicitMode: ProxyConfig.Mode?) -> Result<EnvironmentProxy, EnvironmentProxyProblem> {
        read(explicitMode: explicitMode) { name in getenv(name).map { String(cString: $0) } }
    }

    /// The proxy to use for `endpoint`, and the variable it came from; nil: go direct.
    public func source(for endpoint: HTTPEndpoint) -> Source? {
        guard !noProxy.matches(host: endpoint.address.host) else { return nil }
        guard var chosen = (endpoint.tls ? https : http) ?? all else { return nil }
        chosen.proxy.mode = explicitMode ?? (endpoint.tls ? .connect : .forward)
        return chosen
    }

    public func proxy(for endpoint: HTTPEndpoint) -> ProxyConfig? { source(for: endpoint)?.proxy }
}

/// A proxy variable that is set but holds no usable proxy URL.
public struct EnvironmentProxyProblem: Error, Sendable, Equatable {
    public var variable: String
    var problem: ValueProblem
}

/// `no_proxy`: comma- (or space-) separated entries, compared without case:
///
/// * `*` alone: every host goes direct;
/// * a name (`example.com` or `.example.com`): that host and every host under it;
/// * an IP address: that address (IPv6 with or without brackets);
/// * a CIDR block (`10.0.0.0/8`, `fd00::/8`): every address in it.
///
/// A `:port` after a name or IPv4 address is ignored (curl ignores it too).
public struct NoProxyList: Sendable, Equatable {
    public private(set) var matchesAll = false
    private var names: [String] = []
    private var blocks: [IPPrefix] = []

    public init(_ text: String) {
        let separators: Set<Character> = [",", " ", "\t"]
        for raw in text.split(whereSeparator: { separators.contains($0) }) {
            var entry = String(raw).lowercasedASCII()
            if entry == "*" {
                matchesAll = true
                continue
            }
            if let block = Self.block(entry) {
                blocks.append(block)
                continue
            }
            if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
                entry = String(entry[entry.index(after: entry.startIndex)..<close])
            } else if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
                entry = String(entry[..<colon])
            }
            while entry.hasPrefix(".") { entry.removeFirst() }
            while entry.hasSuffix(".") { entry.removeLast() }
            if !entry.isEmpty { names.append(entry) }
        }
    }

    public func matches(host rawHost: String) -> Bool {
        if matchesAll { return true }
        var host = rawHost.lowercasedASCII()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        while host.hasSuffix(".") { host.removeLast() }
        if let address = IPAddressParser.parse(host), blocks.contains(where: { $0.contains(address) }) { return true }
        return names.contains { host == $0 || host.hasSuffix("." + $0) }
    }

    /// An address or `address/prefix` (the address may be in brackets); a bare address is a block of one.
    private static func block(_ entry: String) -> IPPrefix? {
        var parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if parts[0].hasPrefix("["), parts[0].hasSuffix("]") { parts[0] = String(parts[0].dropFirst().dropLast()) }
        return IPPrefix(parts.joined(separator: "/"))
    }
}
