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
    private var blocks: [CIDRBlock] = []

    public init(_ text: String) {
        let separators: Set<Character> = [",", " ", "\t"]
        for raw in text.split(whereSeparator: { separators.contains($0) }) {
            var entry = String(raw).lowercasedASCII()
            if entry == "*" {
                matchesAll = true
                continue
            }
            if let block = CIDRBlock(entry) {
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
        if let address = IPAddressBytes(host), blocks.contains(where: { $0.contains(address) }) { return true }
        return names.contains { host == $0 || host.hasSuffix("." + $0) }
    }
}

/// An IPv4 or IPv6 address as its bytes (4 or 16).
struct IPAddressBytes: Equatable {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }
}

/// `address/prefix`; a bare address is a block of one.
struct CIDRBlock: Equatable {
    let network: IPAddressBytes
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        var addressText = String(parts[0])
        if addressText.hasPrefix("["), addressText.hasSuffix("]") { addressText = String(addressText.dropFirst().dropLast()) }
        guard let network = IPAddressBytes(addressText) else { return nil }
        let bits = network.bytes.count * 8
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            prefix = bits
        }
        self.network = network
    }

    func contains(_ address: IPAddressBytes) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var remaining = prefix
        for (have, want) in zip(address.bytes, network.bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if have & mask != want & mask { return false }
            remaining -= 8
        }
        return true
    }
}
