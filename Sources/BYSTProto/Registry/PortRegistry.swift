// BYPSS-style port registration (docs/ARCHITECTURE.md §1, §5), sans-IO: the registry's whole
// state and rules, fed requests and time; the embedded registry service and tests drive it.
//
//   register(port, info) ─▶ owned by the caller if free (else: who owns it)
//   renew / any request ──▶ the caller's lease runs again
//   lease runs out ───────▶ its ports are released ─▶ watchers are told (events)
//   session closed ───────▶ its ports are released after the close grace, unless the client
//                           speaks again first (the remote end closed its connection: FIN/RST)
//   relet(ports) ─────────▶ a client that reconnects keeps what it owned (within its lease,
//                           or during the grace period after a registry restart)
//   send(port, message) ──▶ delivered to the port's owner (event)
//
// **Invariants**
// - A port has at most one owner; the owner is a client with a live lease.
// - Within `grace` of the registry's start, only relets can take ports: previous owners
//   get theirs back before anyone else may register them (no flapping after a restart).
//   A port relet or registered since the start has had its previous owner back: once it is
//   released again (unregister, close grace, lease) anyone may register it at once.

/// A registry client: one node's session with the registry.
public struct RegistryClientID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { rawValue }
}

public struct PortRegistry: Sendable {
    public struct Configuration: Sendable {
        /// How long a client's ports outlive its last request.
        public var lease: Duration
        /// After the registry (re)starts, how long only relets may take ports.
        public var grace: Duration
        /// How long a client's ports outlive its session's close (its connection ended by
        /// the client's side: a crash's kernel sends FIN or RST at once); zero: until the lease
        /// runs out, as for a silent client.
        public var closeGrace: Duration
        public init(lease: Duration = .seconds(5), grace: Duration = .seconds(10), closeGrace: Duration = .milliseconds(300)) {
            self.lease = lease
            self.grace = grace
            self.closeGrace = closeGrace
        }
    }

    public struct Owner: Sendable, Equatable {
        public let client: RegistryClientID
        /// What the owner published (a gateway's endpoints).
        public let info: String
    }

    public enum RegisterResult: Sendable, Equatable {
        case registered
        case alreadyYours
        case taken(by: Owner)
        /// The registry just started: previous owners may relet until `until`.
        case retryLater(until: Nanoseconds)
    }

    public enum Event: Sendable, Equatable {
        /// `port` was released (unregistered, or its owner's lease ran out); sent to each watcher.
        case released(port: String, previousOwner: RegistryClientID, watcher: RegistryClientID)
        /// `port` got an owner (registered or relet); sent to each watcher but the owner.
        case claimed(port: String, owner: Owner, watcher: RegistryClientID)
        /// The owner's lease ran out: `port` is no longer its own (sent to the old owner, who
        /// may still be connected but too slow to renew).
        case revoked(port: String, owner: RegistryClientID)
        /// A client's lease ran out.
        case expired(RegistryClientID)
        /// A client's session closed and it did not come back within the close grace.
        case closed(RegistryClientID)
        /// A message for the owner of `port`.
        case message(to: RegistryClientID, from: RegistryClientID, port: String, body: String)
    }

    private struct Client {
        var deadline: Nanoseconds
        var ports: Set<String> = []
        /// Its session closed: the ports go at this instant unless it speaks again first.
        var closeDeadline: Nanoseconds?
    }

    public let configuration: Configuration
    private let graceUntil: Nanoseconds
    private var clients: [RegistryClientID: Client] = [:]
    /// Leases clients asked for; kept after a lease runs out, for when the client renews again.
    private var leases: [RegistryClientID: Duration] = [:]
    public private(set) var owners: [String: Owner] = [:]
    private var watchers: [String: Set<RegistryClientID>] = [:]
    private var events: [Event] = []
    /// Ports that had an owner since the start: the restart grace no longer protects them.
    private var settled: Set<String> = []

    public init(configuration: Configuration = .init(), now: Nanoseconds) {
        self.configuration = configuration
        graceUntil = now + configuration.grace.nanoseconds
    }

    // MARK: Clients and leases

    /// Any request from `client` (or an explicit keepalive) renews its lease.
    /// A request after a session close proves the client alive: its close grace ends.
    public mutating func renew(_ client: RegistryClientID, now: Nanoseconds) {
        let lease = leases[client] ?? configuration.lease
        clients[client, default: Client(deadline: 0)].deadline = now + lease.nanoseconds
        clients[client]?.closeDeadline = nil
    }

    /// The client's session closed without an unregister (its end closed the connection):
    /// unless it speaks again within the close grace (a reconnect, a relet), its ports are
    /// released then — a crashed process's ports need not wait for its lease. Never later
    /// than its lease would release them.
    public mutating func sessionClosed(_ client: RegistryClientID, now: Nanoseconds) {
        guard configuration.closeGrace > .zero, let state = clients[client], !state.ports.isEmpty else { return }
        clients[client]?.closeDeadline = min(state.closeDeadline ?? .max, now + configuration.closeGrace.nanoseconds)
    }

    /// The client's session has a connection again: it is alive, its close grace ends.
    public mutating func sessionResumed(_ client: RegistryClientID) {
        clients[client]?.closeDeadline = nil
    }

    /// Whether `client`'s ports wait for the end of a close grace.
    public func isClosing(_ client: RegistryClientID) -> Bool { clients[client]?.closeDeadline != nil }

    /// The lease `client` asked for (its hello), from now on.
    public mutating func setLease(_ lease: Duration, for client: RegistryClientID, now: Nanoseconds) {
        leases[client] = lease
        renew(client, now: now)
    }

    /// A client reconnected and claims the ports it owned: it keeps those still its own and
    /// takes back free ones it names (after a registry restart nobody owns anything, and
    /// within the grace period nobody else may register). A client in its close grace keeps
    /// only the ports it names: a restarted process relets nothing and must not inherit the
    /// ports of the one that crashed. Returns the ports it now owns.
    public mutating func relet(_ client: RegistryClientID, ports: [String: String], now: Nanoseconds) -> [String] {
        if isClosing(client) {
            for port in self.ports(of: client) where ports[port] == nil {
                events.append(.revoked(port: port, owner: client))
                release(port)
            }
        }
        renew(client, now: now)
        for (port, info) in ports.sorted(by: { $0.key < $1.key }) where owners[port] == nil || owners[port]?.client == client {
            take(port, for: client, info: info)
        }
        return clients[client]?.ports.sorted() ?? []
    }

    public mutating func register(_ port: String, info: String, by client: RegistryClientID, now: Nanoseconds) -> RegisterResult {
        renew(client, now: now)
        if let owner = owners[port] {
            guard owner.client == client else { return .taken(by: owner) }
            take(port, for: client, info: info)
            return .alreadyYours
        }
        guard now >= graceUntil || settled.contains(port) else { return .retryLater(until: graceUntil) }
        take(port, for: client, info: info)
        return .registered
    }

    public mutating func unregister(_ port: String, by client: RegistryClientID, now: Nanoseconds) {
        renew(client, now: now)
        guard owners[port]?.client == client else { return }
        release(port)
    }

    /// The registry no longer lets the owner hold `port` (its permission was withdrawn): the
    /// port is released and the owner told, as when its lease runs out.
    public mutating func revoke(_ port: String) {
        guard let owner = owners[port] else { return }
        events.append(.revoked(port: port, owner: owner.client))
        release(port)
    }

    /// The client says goodbye: its ports are released at once.
    public mutating func disconnect(_ client: RegistryClientID) {
        guard let state = clients.removeValue(forKey: client) else { return }
        for port in state.ports.sorted() { release(port) }
    }

    // MARK: Queries, watches, messages

    public func owner(of port: String) -> Owner? { owners[port] }

    public func ports(of client: RegistryClientID) -> [String] { clients[client]?.ports.sorted() ?? [] }

    public var portCount: Int { owners.count }

    /// `client` is told (an event) when `port` is released or claimed, until it unwatches
    /// (the service ends a client's watches with its stream, not with its lease).
    public mutating func watch(_ port: String, by client: RegistryClientID, now: Nanoseconds) {
        renew(client, now: now)
        watchers[port, default: []].insert(client)
    }

    public mutating func unwatch(_ port: String, by client: RegistryClientID) {
        watchers[port]?.remove(client)
    }

    /// Queues `body` for the owner of `port`; false if the port has no owner.
    public mutating func send(_ body: String, to port: String, from client: RegistryClientID, now: Nanoseconds) -> Bool {
        renew(client, now: now)
        guard let owner = owners[port] else { return false }
        events.append(.message(to: owner.client, from: client, port: port, body: body))
        return true
    }

    // MARK: Time

    /// Expires clients whose lease or close grace ran out (their ports are released) and
    /// returns everything that happened since the last call.
    public mutating func poll(now: Nanoseconds) -> [Event] {
        for client in clients.keys.sorted() {
            guard let state = clients[client] else { continue }
            let leaseOver = state.deadline <= now
            guard leaseOver || (state.closeDeadline ?? .max) <= now else { continue }
            for port in ports(of: client) { events.append(.revoked(port: port, owner: client)) }
            disconnect(client)
            events.append(leaseOver ? .expired(client) : .closed(client))
        }
        defer { events.removeAll() }
        return events
    }

    /// When `poll` next has work: the earliest lease or close-grace deadline.
    public var nextDeadline: Nanoseconds? { clients.values.map { min($0.deadline, $0.closeDeadline ?? .max) }.min() }

    // MARK: Internals

    private mutating func take(_ port: String, for client: RegistryClientID, info: String) {
        let owner = Owner(client: client, info: info)
        guard owners[port] != owner else { return }
        owners[port] = owner
        settled.insert(port)
        clients[client]?.ports.insert(port)
        for watcher in (watchers[port] ?? []).sorted() where watcher != client {
            events.append(.claimed(port: port, owner: owner, watcher: watcher))
        }
    }

    private mutating func release(_ port: String) {
        guard let owner = owners.removeValue(forKey: port) else { return }
        clients[owner.client]?.ports.remove(port)
        for watcher in (watchers[port] ?? []).sorted() where watcher != owner.client {
            events.append(.released(port: port, previousOwner: owner.client, watcher: watcher))
        }
    }
}
