// What HA gateway roles and `port:NAME` endpoints need from a port registry
// (docs/ARCHITECTURE.md §5), whichever backend serves it:
//
//   RegistryBackend ── embedded: EmbeddedRegistryClient (a stream to `byst registry serve`)
//                   └─ etcd:     EtcdRegistryClient (v3 JSON gateway: lease, txn, watch)
//
//   consumers ─register/unregister/watch─▶ backend ─RegistryEvent─▶ Node ─▶ HAController,
//                                                                           PortFollower
//
// Everything runs on the node's event loop; `onEvent` is called on it.
import BYSTProto
import NIOCore

/// A port's owner as the registry publishes it.
struct PortOwner: Sendable, Equatable {
    /// The owner's identity at the registry (embedded: its peer name there; etcd: its node name).
    var node: String
    /// What the owner published: its endpoints, space-separated (`HAConfig.advertise`).
    var info: String
}

enum RegisterOutcome: Sendable, Equatable {
    /// The port is ours (new, or already ours).
    case owned
    /// Someone else owns it.
    case taken(PortOwner)
}

enum RegistryEvent: Sendable, Equatable {
    /// The backend reached the registry (again); earlier watches and registrations were
    /// restored (relet) where the registry allows.
    case connected
    /// The backend lost the registry. Ownership stays valid until `validUntil`.
    case disconnected(reason: String)
    /// The registry confirmed our lease: our ports are surely ours until `validUntil`
    /// (monotonic ns: the confirmed request's *send* time `sentAt` + lease − safety margin).
    case renewed(validUntil: Nanoseconds, sentAt: Nanoseconds)
    /// Embedded registry: our last connection to it ended; it releases a closed session's
    /// ports after `closeGrace` (from its welcome) unless we are back first. We re-dial.
    case sessionDropped(closeGrace: Duration)
    /// Embedded registry, after `sessionDropped`: it holds no state about us (a re-dial was
    /// refused, or reached a restarted registry): only the lease counts.
    case registryStateGone(reason: String)
    /// The registry says we no longer own `port` (lease lapsed there, or the key was deleted).
    case lost(port: String)
    /// A watched port's owner now (nil: free). Sent once after `watch` and on each change.
    case owner(port: String, PortOwner?)
}

protocol RegistryBackend: AnyObject {
    /// Set by the node before `start`.
    var onEvent: ((RegistryEvent) -> Void)? { get set }
    /// Until when ports we own are surely ours (monotonic ns); nil before any confirmation.
    var validUntil: Nanoseconds? { get }
    /// Human-readable: "embedded via peer 'registry'", "etcd http://…".
    var description: String { get }
    /// Connected to the registry right now.
    var isConnected: Bool { get }

    func start()
    /// Releases our ports (best effort) and stops; the future succeeds once the registry has
    /// answered the release, or it could not be sent.
    @discardableResult
    func stop() -> EventLoopFuture<Void>
    /// Claims `port` with `info` if free. Fails with a reason when the registry cannot be
    /// reached or refuses (e.g. during its restart grace period): the caller retries later.
    func register(_ port: String, info: String, completion: @escaping (Result<RegisterOutcome, RegistryFailure>) -> Void)
    func unregister(_ port: String)
    /// Follow `port`'s owner: an `.owner` event now and on each change, until the backend stops.
    func watch(_ port: String)
}

struct RegistryFailure: Error, Sendable, Equatable, CustomStringConvertible {
    var description: String
    /// The registry refused because we may not own the port (not a transient failure).
    var denied = false
    init(_ description: String, denied: Bool = false) {
        self.description = description
        self.denied = denied
    }
}

/// How far before the registry's lease runs out an owner gives up its ports: a fifth of
/// the lease, at least 200 ms — room for scheduling delays and clock-rate differences.
func leaseSafetyMargin(_ lease: Duration) -> Duration {
    max(lease / 5, .milliseconds(200))
}
