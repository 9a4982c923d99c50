import Foundation
import BYSTProto

/// The node's configuration, as read from its TOML file (docs/OPERATIONS.md, "Configuration").
///
///     [node]        → the fields of `NodeConfig` itself
///     [tun]         → `tun` (nil without the table: no TUN interface, no IP routing)
///     [limits]      → `limits` (defaults without the table)
///     [[peer]]      → `peers`, in file order
///     [[forward]]   → `forwards`, in file order
///
/// Built by `NodeConfig.parse(_:file:)` / `NodeConfig.load(path:)`, which apply the
/// defaults below and reject anything else with a one-line `ConfigError`.
///
/// **Invariants** (guaranteed for values returned by the loader)
/// - `name` is 1…64 bytes of UTF-8 (`LinkHello.isValidNodeName`).
/// - `keepaliveInterval` > 0, `deadLinkTimeout` > `keepaliveInterval` and
///   `idleKeepaliveInterval` ≥ `keepaliveInterval`; `sessionLinger` > 0.
/// - `maxRecordPayload` is within `NodeConfig.maxRecordPayloadRange`.
/// - Peer names are unique; no two forwards (and no two `listen` entries) share an address.
/// - Every `ForwardConfig.peer` names one of `peers`.
/// - No prefix is in the `allowedIPs` of two peers (nor twice in one), so the peer for a
///   destination is the one holding its longest matching prefix, without ties.
public struct NodeConfig: Sendable, Equatable {
    /// Sent to peers in the handshake hello; names the default control socket.
    public var name: String
    /// Raw-TCP addresses on which we accept links (`byst://` endpoints of other nodes).
    public var listen: [HostPort]
    /// Unix socket of `byst status` and friends.
    public var controlSocket: String
    /// Path of the key store file (`byst key …`).
    public var keyStore: String
    /// How long a session outlives its last link, waiting for a reconnect.
    public var sessionLinger: Duration
    /// Interval between keepalive pings on each link.
    public var keepaliveInterval: Duration
    /// A link silent for this long is declared dead and its traffic moves to the others.
    public var deadLinkTimeout: Duration
    /// Interval between pings on a link idle for a dead-link timeout, with peers that offer
    /// it too (PROTOCOL.md §5.5); equal to `keepaliveInterval`: idle links are pinged like
    /// busy ones (not offered).
    public var idleKeepaliveInterval = SessionConfig.defaultIdleKeepaliveInterval
    /// Largest record payload we accept (advertised in the hello, PROTOCOL.md §3.3).
    public var maxRecordPayload: Int
    /// The TUN interface carrying IP packets to and from the peers' `allowedIPs`.
    public var tun: TunConfig?
    /// HTTP(S) listeners for links (`http_listen`, `https_listen`, `http_path`, `tls_*`).
    public var http = HTTPServerConfig()
    /// Where `GET /metrics` answers in the Prometheus text format (`metrics_listen`); none by default.
    public var metricsListen: [HostPort] = []
    /// Per-peer series in the metrics (`metrics_peers`): about 30 per peer; a hub with
    /// thousands of branches may keep only the node-wide ones.
    public var metricsPeers = true
    /// zstd level of compressed records (`compression_level`, within
    /// `RecordCompressor.levelRange`); which records are compressed is per peer.
    public var compressionLevel = NodeConfig.defaultCompressionLevel
    /// Where HA ports are registered (`registry`, `registry_lease`): needed by `[ha]` and by
    /// `port:NAME` endpoints.
    public var registry: RegistryConfig?
    /// `[ha]`: this node is one of the gateways of an HA port.
    public var ha: HAConfig?
    /// `[limits]`: resource caps and handshake flood protection.
    public var limits = LimitsConfig()
    public var peers: [PeerConfig]
    public var forwards: [ForwardConfig]

    public static let defaultKeyStore = "/etc/byst/keys"
    public static let defaultSessionLinger: Duration = .seconds(60)
    /// One ping a second detects a dead link within a few seconds (docs/ARCHITECTURE.md §4b), at
    /// a cost of a few dozen bytes per second per link.
    public static let defaultKeepaliveInterval: Duration = .seconds(1)
    /// Five missed pings: long enough to ride out a short stall, far below TCP's own timeout.
    public static let defaultDeadLinkTimeout: Duration = .seconds(5)
    public static let defaultMaxRecordPayload = 64 * 1024
    /// zstd's own default: about 3× faster than level 9 for a few % less ratio on text.
    public static let defaultCompressionLevel = Int(RecordCompressor.defaultLevel)
    /// The range the hello can carry (PROTOCOL.md §3.3).
    public static let maxRecordPayloadRange = 1024...(1 << 20)

    /// `/run/byst/<name>.sock`.
    public static func defaultControlSocket(name: String) -> String { "/run/byst/\(name).sock" }

    public init(
        name: String,
        listen: [HostPort] = [],
        controlSocket: String? = nil,
        keyStore: String = NodeConfig.defaultKeyStore,
        sessionLinger: Duration = NodeConfig.defaultSessionLinger,
        keepaliveInterval: Duration = NodeConfig.defaultKeepaliveInterval,
        deadLinkTimeout: Duration = NodeConfig.defaultDeadLinkTimeout,
        maxRecordPayload: Int = NodeConfig.defaultMaxRecordPayload,
        tun: TunConfig? = nil,
        peers: [PeerConfig] = [],
        forwards: [ForwardConfig] = []
    ) {
        self.name = name
        self.listen = listen
        self.controlSocket = controlSocket ?? Self.defaultControlSocket(name: name)
        self.keyStore = keyStore
        self.sessionLinger = sessionLinger
        self.keepaliveInterval = keepaliveInterval
        self.deadLinkTimeout = deadLinkTimeout
        self.maxRecordPayload = maxRecordPayload
        self.tun = tun
        self.peers = peers
        self.forwards = forwards
    }

    public func peer(named name: String) -> PeerConfig? { peers.first { $0.name == name } }

    /// Idle links are pinged less often than busy ones (`LinkFeatures.idleKeepalive` is offered).
    public var keepsIdleLinksCheaply: Bool { idleKeepaliveInterval > keepaliveInterval }
}

/// `[tun]`: the node's TUN interface (docs/OPERATIONS.md, "[tun]").
///
/// **Invariants** (from the loader)
/// - `name` satisfies `TunConfig.isValidInterfaceName`.
/// - `addresses` is non-empty, holds no address twice, and each keeps its host bits (it
///   is the interface's own address: `10.0.1.1/24`, not `10.0.1.0/24`); lengths are ≥ 1.
/// - `mtu` is within `TunConfig.mtuRange`, and ≥ `TunConfig.minimumIPv6MTU` when an
///   address is IPv6.
public struct TunConfig: Sendable, Equatable {
    /// Interface name (`ip link` shows it).
    public var name: String
    /// Addresses assigned to the interface, with their prefix lengths.
    public var addresses: [IPPrefix]
    public var mtu: Int
    /// Kernel offloads on the TUN (`offload`): GSO super-packets cross the tunnel whole when
    /// both ends have them (PROTOCOL.md §5.4); off = one wire-size packet at a time.
    public var offload = true
    /// TUN queues (`queues`, IFF_MULTI_QUEUE), each with a data plane of its own: by default
    /// one per core, at most 4 (a plane per core lets a bigger gateway use its cores).
    public var queues = TunConfig.defaultQueues
    public static var defaultQueues: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4) }
    /// Established plain links move to the data plane (`data_plane`). Off, for tests and
    /// comparisons: every link stays on the event loop (the plane still reads and writes the TUN).
    public var dataPlane = true
    public static let queuesRange = 1...16

    public static let defaultName = "byst0"
    public static let defaultMTU = 1500
    /// 576: the smallest datagram every IPv4 host must accept (RFC 791); 65535: the
    /// largest IPv4 packet.
    public static let mtuRange = 576...65535
    /// IPv6 requires every link to carry 1280-byte packets (RFC 8200 §5).
    public static let minimumIPv6MTU = 1280

    public init(name: String = TunConfig.defaultName, addresses: [IPPrefix], mtu: Int = TunConfig.defaultMTU) {
        self.name = name
        self.addresses = addresses
        self.mtu = mtu
    }

    /// 1…15 bytes (IFNAMSIZ 16 with the NUL) of letters, digits, `.`, `_`, `-`, and not
    /// `.` or `..` (which Linux refuses as well).
    public static func isValidInterfaceName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...15).contains(bytes.count), name != ".", name != ".." else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }
}

/// One `[[peer]]`: a node we hold a pre-shared key for.
///
/// **Invariants** (from the loader)
/// - `name` and `key` match `KeyStore.isValidName`.
/// - `links` is within `PeerConfig.linksRange`.
/// - `endpoint == nil` means we never dial this peer; we only accept its links.
/// - `allowTargets` empty means the peer may not make us connect anywhere.
/// - `allowedIPs` are in network form (host bits cleared), none twice, none of length 0.
public struct PeerConfig: Sendable, Equatable {
    public var name: String
    /// Name of the PSK in the key store.
    public var key: String
    public var endpoint: Endpoint?
    /// How many parallel links we open to this peer (when we dial it).
    public var links: Int
    /// Targets this peer may ask us to connect to (port forwards it runs towards us).
    public var allowTargets: [TargetRule]
    /// Cryptokey routing: IP packets to these prefixes go to this peer (longest prefix
    /// wins), and packets from it must come from inside one of them.
    public var allowedIPs: [IPPrefix]
    /// HTTP transport settings (used with an `http://`/`https://` endpoint).
    public var http = HTTPClientOptions()
    /// When dialed links are replaced by fresh ones.
    public var recycle = LinkRecycling.never
    /// Which records we compress towards this peer (`compression`; PROTOCOL.md §4.2):
    /// stream records by default, never TUN packets unless `.all`.
    public var compression = PeerConfig.defaultCompression
    /// `packet_striping`: TUN packets for this peer are spread over its links, numbered, and put
    /// back in order there (PROTOCOL.md §5.4, "Packet striping"), instead of each flow keeping
    /// to one link. Off: one flow gets one link's rate, and nothing is held for reordering.
    public var packetStriping = false
    /// `byst registry serve`: the HA ports this peer may own at our registry (`ports`); none
    /// means it may only query, watch and send (deny by default).
    public var ports: [String] = []
    /// A `port:NAME` endpoint: the gateways that may serve it (`gateways`), by their name at
    /// the registry; an owner not listed is ignored. Required with `port:NAME`.
    public var gateways: [String] = []
    /// `ha_port`: on an HA gateway, the port whose branches this peer is one of: we accept
    /// its links and route its prefixes only while active for that port. Nil: while active
    /// for any of our ports.
    public var haPort: String?
    /// Ways out of this machine the links are dialed through (`uplinks`); empty: as routing
    /// says. With uplinks, `links` is the sum of theirs.
    public var uplinks: [UplinkConfig] = []

    /// Four links spread load over several TCP connections while keeping per-link state
    /// small; 64 caps what one peer can make us hold.
    public static let defaultLinks = 4
    public static let linksRange = 1...64
    /// Off: compressing attacker-influenced bytes next to secrets leaks them through record
    /// sizes (CRIME/BREACH); an operator who knows the traffic may turn it on
    /// (docs/OPERATIONS.md, "Compression").
    public static let defaultCompression = CompressionScope.off

    public init(name: String, key: String, endpoint: Endpoint? = nil, links: Int = PeerConfig.defaultLinks,
                allowTargets: [TargetRule] = [], allowedIPs: [IPPrefix] = []) {
        self.name = name
        self.key = key
        self.endpoint = endpoint
        self.links = links
        self.allowTargets = allowTargets
        self.allowedIPs = allowedIPs
    }

    /// Whether some `allow_targets` rule lets this peer make us connect to `host:port`.
    public func allows(host: String, port: UInt16) -> Bool {
        allowTargets.contains { $0.matches(host: host, port: port) }
    }
}

/// One `[[forward]]`: we listen on `listen` and carry each accepted connection to `peer`,
/// which connects it to `target`.
///
/// **Invariants**: `peer` names a `[[peer]]` of the same config (from the loader).
public struct ForwardConfig: Sendable, Equatable {
    public var listen: HostPort
    public var peer: String
    /// Resolved and connected to by the far node, subject to its `allow_targets`.
    public var target: HostPort

    public init(listen: HostPort, peer: String, target: HostPort) {
        self.listen = listen
        self.peer = peer
        self.target = target
    }
}

/// Where we dial a peer.
///
/// **Invariants**: the address satisfies `HostPort`'s invariants.
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// `byst://host:port`: records straight over TCP.
    case byst(HostPort)
    /// `http://…` / `https://…`: records in HTTP/1.1 bodies (PROTOCOL.md §6).
    case http(HTTPEndpoint)
    /// `port:NAME`: whichever gateway owns the HA port at the registry, at the endpoints it
    /// published (followed as the owner changes).
    case port(String)

    public var description: String {
        switch self {
        case .byst(let address): "byst://\(address)"
        case .http(let endpoint): endpoint.description
        case .port(let name): "port:\(name)"
        }
    }

    public var portName: String? { if case .port(let name) = self { name } else { nil } }

    public var httpEndpoint: HTTPEndpoint? { if case .http(let endpoint) = self { endpoint } else { nil } }
}

/// A host name or IP address with a port, written `host:port`, IPv6 as `[::1]:7000`.
///
/// **Invariants** (for values from the loader)
/// - `host` is non-empty and holds no brackets; it contains `:` only if it is an IPv6 address.
/// - `port` is 1…65535 (0 is never valid in the config).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// One `allow_targets` entry: `host:port` where either side may be `*`.
///
/// **Invariants** (for values from the loader): `.exact` hosts are non-empty and `.exact`
/// ports are 1…65535.
public struct TargetRule: Sendable, Hashable, CustomStringConvertible {
    public enum Host: Sendable, Hashable {
        case any
        /// Compared without regard to ASCII case (DNS names are case-insensitive).
        case exact(String)
    }

    public enum Port: Sendable, Hashable {
        case any
        case exact(UInt16)
    }

    public var host: Host
    public var port: Port

    public init(host: Host, port: Port) {
        self.host = host
        self.port = port
    }

    /// Whether a request to connect to `host:port` falls under this rule. The host is
    /// compared as written (no name resolution): `db.internal` does not match `10.0.0.5`.
    public func matches(host: String, port: UInt16) -> Bool {
        switch self.port {
        case .any: break
        case .exact(let allowed): guard allowed == port else { return false }
        }
        switch self.host {
        case .any: return true
        case .exact(let allowed): return allowed.lowercasedASCII() == host.lowercasedASCII()
        }
    }

    public var description: String {
        let hostText: String
        switch host {
        case .any: hostText = "*"
        case .exact(let name): hostText = name.contains(":") ? "[\(name)]" : name
        }
        switch port {
        case .any: return hostText + ":*"
        case .exact(let number): return hostText + ":\(number)"
        }
    }
}

extension String {
    func lowercasedASCII() -> String { HTTPSyntax.lowercasedASCII(self) }
}
