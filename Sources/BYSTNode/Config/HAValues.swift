import BYSTProto

/// `[node] registry`, `registry_lease` and the etcd security keys: where HA ports are
/// registered (docs/ARCHITECTURE.md §5, docs/OPERATIONS.md "High availability").
///
/// **Invariants** (from the loader): a `.peer` names a `[[peer]]` of the same config with a
/// `byst://` or `http(s)://` endpoint; `.etcd` holds at least one address; `lease` is within
/// `RegistryConfig.leaseRange`; `etcdTLS` is set only with `.etcd(_, tls: true)` and `etcdAuth`
/// only with `.etcd`, and the files they name were usable when the config was loaded.
public struct RegistryConfig: Sendable, Equatable {
    public enum Service: Sendable, Equatable, CustomStringConvertible {
        /// `peer:NAME`: the embedded registry, run by that peer with `byst registry serve`.
        case peer(String)
        /// `etcd://h1:2379,h2:2379,h3:2379`: an etcd cluster's v3 JSON gateways;
        /// `etcds://…`: the same over TLS (`tls`).
        case etcd([HostPort], tls: Bool = false)

        public var description: String {
            switch self {
            case .peer(let name): "peer:\(name)"
            case .etcd(let members, let tls): (tls ? "etcds://" : "etcd://") + members.map(\.description).joined(separator: ",")
            }
        }
    }

    public var service: Service
    /// How long our ports outlive our last confirmed renewal at the registry; an active
    /// gateway steps down a margin before that (failover takes about one lease).
    public var lease: Duration
    /// `registry_tls_*` (with `etcds://`).
    public var etcdTLS: EtcdTLSConfig?
    /// `registry_user` and `registry_password_file` (with `etcd://` or `etcds://`).
    public var etcdAuth: EtcdAuthConfig?

    public static let defaultLease: Duration = .seconds(5)
    /// etcd grants at least 2 s; a minute is the longest anyone should wait for a failover.
    public static let leaseRange: ClosedRange<Duration> = .seconds(2)...(.seconds(60))

    public init(service: Service, lease: Duration = RegistryConfig.defaultLease) {
        self.service = service
        self.lease = lease
    }

    static let expected = "\"peer:NAME\" (a [[peer]] running `byst registry serve`) or \"etcd://host:port,host:port,…\" (etcds:// for TLS)"

    static func parseService(_ text: String) -> Result<Service, ValueProblem> {
        let lower = text.lowercasedASCII()
        if lower.hasPrefix("peer:") {
            let name = String(text.dropFirst("peer:".count))
            guard KeyStore.isValidName(name) else { return .failure(.invalid(expected: expected)) }
            return .success(.peer(name))
        }
        guard let scheme = ["etcd://", "etcds://"].first(where: { lower.hasPrefix($0) }) else { return .failure(.invalid(expected: expected)) }
        var members: [HostPort] = []
        for part in text.dropFirst(scheme.count).split(separator: ",", omittingEmptySubsequences: false) {
            guard case .success(let address) = HostPort.parse(String(part)), !members.contains(address) else {
                return .failure(.invalid(expected: "\"\(scheme)host:port,host:port,…\" (distinct members, ports 1…65535)"))
            }
            members.append(address)
        }
        return .success(.etcd(members, tls: scheme == "etcds://"))
    }
}

/// `[ha]`: this node is one of the gateways serving HA ports. Each port's owner at the
/// registry is active for it; the others stand by.
///
/// **Invariants** (from the loader): `ports` is non-empty, distinct, each `isValidPortName`;
/// `advertise` is non-empty and holds no `port:` endpoint; the config has a `registry`;
/// `addresses` are distinct and each one's `port`, if set, is one of `ports`; `onActive` and
/// `onStandby` are nil or non-empty; `notifyTimeout` is within `HAConfig.notifyTimeoutRange`.
public struct HAConfig: Sendable, Equatable {
    /// `ports` (or `port = "x"`, the same as `ports = ["x"]`), in our order of preference:
    /// the first is claimed at once, the others only while their preferred gateway is gone
    /// (PortPreference).
    public var ports: [String]
    /// Endpoints branches dial while we are active (published as each port's info).
    public var advertise: [Endpoint]
    /// LAN-side virtual addresses held while active (`address`).
    public var addresses: [HAAddress] = []
    /// Commands (argv, no shell) run on each transition to active / to standby.
    public var onActive: [String]?
    public var onStandby: [String]?
    /// After this a notify command still running is killed.
    public var notifyTimeout: Duration = HAConfig.defaultNotifyTimeout

    public static let defaultNotifyTimeout: Duration = .seconds(10)
    public static let notifyTimeoutRange: ClosedRange<Duration> = .milliseconds(100)...(.seconds(600))

    public init(ports: [String], advertise: [Endpoint]) {
        self.ports = ports
        self.advertise = advertise
    }

    /// A registry port name that is not a preferred gateway's `.want` port.
    static func isValidPortName(_ name: String) -> Bool {
        RegistryService.isValidName(name) && !name.hasSuffix(PortPreference.wantSuffix)
    }

    /// The port's info at the registry: the endpoints, space-separated.
    public var info: String { advertise.map(\.description).joined(separator: " ") }

    /// The first endpoint of a published info that this version can dial.
    static func firstEndpoint(inInfo info: String) -> Endpoint? {
        for word in info.split(separator: " ") {
            if case .success(let endpoint) = Endpoint.parse(String(word)), endpoint.portName == nil { return endpoint }
        }
        return nil
    }
}
