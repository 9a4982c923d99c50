import BYSTProto

/// `http://host:port/path` or `https://…`: records in an HTTP/1.1 body (PROTOCOL.md §6).
///
/// **Invariants** (from the loader): `path` starts with `/` and holds only
/// `A-Z a-z 0-9 / . _ ~ -`; `address` satisfies `HostPort`'s invariants.
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var address: HostPort
    public var path: String

    public static let defaultPath = "/byst"

    public init(tls: Bool, address: HostPort, path: String = HTTPEndpoint.defaultPath) {
        self.tls = tls
        self.address = address
        self.path = path
    }

    public var description: String { "\(tls ? "https" : "http")://\(address)\(path)" }

    /// `host:port` as the `Host` header and CONNECT target write it.
    public var authority: String { address.description }
}

/// How a link uses HTTP (docs/OPERATIONS.md, "HTTP transport").
public enum HTTPMode: String, Sendable, Equatable, CaseIterable {
    /// Duplex first, then websocket, then split, until one gets through. What worked is remembered.
    case auto
    /// One POST whose chunked body carries our records, answered by a chunked 200.
    case duplex
    /// A long GET for the downstream, bounded POSTs for the upstream.
    case split
    /// A GET upgraded to WebSocket (101): records in binary messages both ways.
    case websocket
}

/// `http_proxy`: a forward proxy between us and the peer's HTTP endpoint.
public struct ProxyConfig: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Absolute-URI requests through the proxy (the proxy sees the HTTP exchange).
        case forward
        /// `CONNECT host:port`, then raw BYST (inside TLS for https://) through the tunnel;
        /// with `http_mode = "websocket"` the WebSocket upgrade goes through the tunnel instead.
        case connect
    }

    public var address: HostPort
    public var username: String?
    public var password: String?
    public var mode: Mode

    public init(address: HostPort, username: String? = nil, password: String? = nil, mode: Mode) {
        self.address = address
        self.username = username
        self.password = password
        self.mode = mode
    }
}

/// Per-peer client settings of the HTTP transport.
///
/// **Invariants** (from the loader): set only for peers with an `http://`/`https://`
/// endpoint; `tls*` only for `https://`; a proxy in `forward` mode only with `http://`;
/// every pin is 32 bytes.
public struct HTTPClientOptions: Sendable, Equatable {
    public var mode: HTTPMode = .auto
    /// `http_proxy` as a URL.
    public var proxy: ProxyConfig?
    /// `http_proxy = "env"`: read from the environment at load; chosen per endpoint at dial.
    public var environmentProxy: EnvironmentProxy?
    /// `http_proxy_credentials_file`: the proxy's user and password, read when the peer is set
    /// up (ProxyCredentialsFile), instead of user info in `http_proxy`.
    public var proxyCredentialsFile: String?
    /// PEM file of the CAs that may sign the server's certificate; nil: the system's roots.
    public var tlsCAFile: String?
    /// SHA-256 digests of acceptable server SubjectPublicKeyInfos; when set, a matching key
    /// is required and enough (self-signed servers), and the CA chain is not consulted.
    public var tlsPins: [[UInt8]] = []
    /// The name checked against the certificate and sent as SNI; default: the endpoint host.
    public var tlsServerName: String?

    public init() {}

    /// The proxy a dial to `endpoint` goes through; nil: direct.
    public func proxy(for endpoint: HTTPEndpoint) -> ProxyConfig? {
        proxy ?? environmentProxy?.proxy(for: endpoint)
    }
}

/// When a dialed link is replaced by a fresh one (proxies cap request lifetimes and sizes).
/// The replacement comes up first; the old link retires without losing data (PROTOCOL.md §5.6).
public struct LinkRecycling: Sendable, Equatable {
    public var after: Duration?
    /// Bytes in and out of the link, counted on the wire.
    public var bytes: UInt64?

    public init(after: Duration? = nil, bytes: UInt64? = nil) {
        self.after = after
        self.bytes = bytes
    }

    /// HTTP links: well inside common proxy limits (squid's 15-minute read timeout, request
    /// size caps of a few GiB).
    public static let httpDefault = LinkRecycling(after: .seconds(600), bytes: 1 << 30)
    public static let never = LinkRecycling()
}

/// `[node]` settings of the HTTP listeners.
public struct HTTPServerConfig: Sendable, Equatable {
    /// Plain HTTP listeners (also accepting raw BYST, as arrives through CONNECT tunnels).
    public var listen: [HostPort] = []
    /// The same behind TLS.
    public var tlsListen: [HostPort] = []
    /// The only path that serves links.
    public var path: String = HTTPEndpoint.defaultPath
    /// PEM certificate chain and private key; required with `tlsListen`.
    public var tlsCertificate: String?
    public var tlsPrivateKey: String?

    public init() {}
}
