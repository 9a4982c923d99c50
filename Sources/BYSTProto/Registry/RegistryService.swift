// The embedded registry service (`byst registry serve`), sans-IO: requests from
// authenticated clients in, replies and notices out. The node adapter feeds it each
// decoded request with the client's identity (its peer name, proven by its PSK) and polls
// it on `nextDeadline`.
//
//   request ─▶ handle ─▶ reply (same stream)
//                └──────▶ PortRegistry events ─▶ notices(now:) ─▶ (client, notice) pairs
//
// A client must say hello first on each stream: its lease, and its relet claims.
// **Authorization** (deny by default): a client may register or relet only the ports its
// `RegistryPermissions` list; other claims are refused (`notAllowed`, or left out of the
// welcome) and reported by `takeDenials()` for the log and the counters.

public struct RegistryService: Sendable {
    public private(set) var registry: PortRegistry
    /// Clients that said hello since their stream opened.
    private var greeted: Set<RegistryClientID> = []
    private var watching: [RegistryClientID: Set<String>] = [:]
    /// Which ports each client may own; `updatePermissions` changes it (config reload).
    public private(set) var permissions: RegistryPermissions
    /// Claims refused since the last `takeDenials()`: (client, port).
    private var denials: [(RegistryClientID, String)] = []

    /// Per client: a port count and a watch count no honest gateway or branch comes near
    /// (the defaults of `Limits`; `[limits] registry_ports` / `registry_watches` change them).
    public static let maxPortsPerClient = 256
    public static let maxWatchesPerClient = 256
    public static let maxInfoBytes = 4096
    public static let maxBodyBytes = 16 * 1024

    /// Per-client caps; a request beyond one is answered `.error(.limit, …)`.
    public struct Limits: Sendable, Equatable {
        public var portsPerClient: Int
        public var watchesPerClient: Int

        public init(portsPerClient: Int = RegistryService.maxPortsPerClient,
                    watchesPerClient: Int = RegistryService.maxWatchesPerClient) {
            self.portsPerClient = portsPerClient
            self.watchesPerClient = watchesPerClient
        }
    }

    public let limits: Limits

    public init(configuration: PortRegistry.Configuration, now: Nanoseconds, limits: Limits = .init(),
                permissions: RegistryPermissions = .init()) {
        registry = PortRegistry(configuration: configuration, now: now)
        self.limits = limits
        self.permissions = permissions
    }

    /// New permissions (config reload): ports whose owner may no longer own them are
    /// released at once, their owners told (`lost`) and watchers notified.
    public mutating func updatePermissions(_ permissions: RegistryPermissions) {
        self.permissions = permissions
        for (port, owner) in registry.owners.sorted(by: { $0.key < $1.key }) where !permissions.mayOwn(port, client: owner.client) {
            registry.revoke(port)
        }
    }

    /// The claims refused since the last call, oldest first: (client, port).
    public mutating func takeDenials() -> [(RegistryClientID, String)] {
        defer { denials.removeAll() }
        return denials
    }

    public mutating func handle(_ request: RegistryRequest, from client: RegistryClientID, now: Nanoseconds) -> RegistryReply {
        if case .hello(let lease, let relet) = request {
            let clamped = min(max(lease, RegistryRequest.leaseRange.lowerBound), RegistryRequest.leaseRange.upperBound)
            guard relet.count <= limits.portsPerClient else { return .error(.limit, "more than \(limits.portsPerClient) ports") }
            if let bad = relet.first(where: { !Self.isValidName($0.port) || $0.info.utf8.count > Self.maxInfoBytes }) {
                return .error(.badRequest, "bad relet claim for \(bad.port.prefix(64))")
            }
            var claims: [String: String] = [:]
            for claim in relet {
                guard permissions.mayOwn(claim.port, client: client) else {
                    denials.append((client, claim.port))
                    continue
                }
                claims[claim.port] = claim.info
            }
            // The cap counts what the client owns already: a second hello must not add past it.
            let owned = Set(registry.ports(of: client))
            let gained = Set(claims.keys).filter { !owned.contains($0) && registry.owner(of: $0) == nil }
            guard owned.count + gained.count <= limits.portsPerClient else {
                return .error(.limit, "more than \(limits.portsPerClient) ports")
            }
            greeted.insert(client)
            // Relet first: a client in its close grace keeps only what it names (renewing ends the grace).
            let ports = registry.relet(client, ports: claims, now: now)
            registry.setLease(.milliseconds(Int64(clamped)), for: client, now: now)
            return .welcome(leaseMilliseconds: clamped, closeGraceMilliseconds: closeGraceMilliseconds, ports: ports)
        }
        guard greeted.contains(client) else { return .error(.helloFirst, "say hello first") }
        switch request {
        case .hello:
            return .error(.badRequest, "unreachable")
        case .register(let port, let info):
            guard Self.isValidName(port), info.utf8.count <= Self.maxInfoBytes else { return .error(.badRequest, "bad port name or info") }
            guard permissions.mayOwn(port, client: client) else {
                registry.renew(client, now: now)
                denials.append((client, port))
                return .error(.notAllowed, "port \(port.prefix(64)) is not among the ports this registry lets '\(client)' own")
            }
            guard registry.ports(of: client).count < limits.portsPerClient || registry.owner(of: port)?.client == client else {
                return .error(.limit, "more than \(limits.portsPerClient) ports")
            }
            switch registry.register(port, info: info, by: client, now: now) {
            case .registered, .alreadyYours: return .registered
            case .taken(let owner): return .taken(owner: owner.client.rawValue, info: owner.info)
            case .retryLater(let until):
                return .retryLater(milliseconds: UInt32(clamping: (until &- min(until, now)) / 1_000_000 + 1))
            }
        case .unregister(let port):
            registry.unregister(port, by: client, now: now)
            return .done
        case .query(let port):
            registry.renew(client, now: now)
            return .owner(registry.owner(of: port).map { .init(node: $0.client.rawValue, info: $0.info) })
        case .queryNode(let node):
            registry.renew(client, now: now)
            return .ports(registry.ports(of: RegistryClientID(node)))
        case .watch(let port):
            guard Self.isValidName(port) else { return .error(.badRequest, "bad port name") }
            guard watching[client, default: []].count < limits.watchesPerClient else {
                return .error(.limit, "more than \(limits.watchesPerClient) watches")
            }
            watching[client, default: []].insert(port)
            registry.watch(port, by: client, now: now)
            return .done
        case .unwatch(let port):
            watching[client]?.remove(port)
            registry.unwatch(port, by: client)
            registry.renew(client, now: now)
            return .done
        case .send(let port, let body):
            guard body.utf8.count <= Self.maxBodyBytes else { return .error(.limit, "message over \(Self.maxBodyBytes) bytes") }
            return registry.send(body, to: port, from: client, now: now) ? .done : .error(.noOwner, "port \(port.prefix(64)) has no owner")
        case .keepalive:
            registry.renew(client, now: now)
            return .done
        }
    }

    /// The client's stream closed: it must say hello again. Its ports stay until its lease
    /// runs out (it may reconnect and relet); its watches end with the stream.
    public mutating func streamClosed(_ client: RegistryClientID) {
        greeted.remove(client)
        for port in watching.removeValue(forKey: client) ?? [] { registry.unwatch(port, by: client) }
    }

    /// The client's connection to us was closed by its end (FIN or RST: a crashed process's
    /// kernel closes it at once): its ports go after the close grace unless it speaks again.
    public mutating func sessionClosed(_ client: RegistryClientID, now: Nanoseconds) {
        registry.sessionClosed(client, now: now)
    }

    /// The client's session has a connection again: its close grace ends.
    public mutating func sessionResumed(_ client: RegistryClientID) {
        registry.sessionResumed(client)
    }

    /// What the welcome tells clients: how soon after their connection closes their ports go.
    public var closeGraceMilliseconds: UInt32 {
        UInt32(clamping: registry.configuration.closeGrace.nanoseconds / 1_000_000)
    }

    /// Expires lapsed leases and returns what each client should be told.
    public mutating func notices(now: Nanoseconds) -> [(RegistryClientID, RegistryNotice)] {
        var notices: [(RegistryClientID, RegistryNotice)] = []
        for event in registry.poll(now: now) {
            switch event {
            case .released(let port, _, let watcher): notices.append((watcher, .ownerChanged(port: port, owner: nil)))
            case .claimed(let port, let owner, let watcher):
                notices.append((watcher, .ownerChanged(port: port, owner: .init(node: owner.client.rawValue, info: owner.info))))
            case .revoked(let port, let owner): notices.append((owner, .lost(port: port)))
            case .message(let to, let from, let port, let body):
                notices.append((to, .message(from: from.rawValue, port: port, body: body)))
            case .expired, .closed:
                break
            }
        }
        return notices
    }

    public var nextDeadline: Nanoseconds? { registry.nextDeadline }

    /// 1…255 bytes, no control characters.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        return (1...RegistryMessage.maxNameBytes).contains(bytes.count) && !bytes.contains { $0 < 0x20 || $0 == 0x7F }
    }
}
