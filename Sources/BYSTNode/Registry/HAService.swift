// The node's registry client and HA role (docs/ARCHITECTURE.md §5, docs/OPERATIONS.md "High
// availability"): the backend of `registry` (the embedded registry through a peer, or etcd),
// and with `[ha]` the HAController of our ports, their virtual addresses and notify commands.
// What a role change does to listeners, links and routes is the node's (Node+HA.swift).
// Event loop only.
//
//   start: backend started, `port:NAME` endpoints watched, [ha] ports claimed
//   stop:  ports stepped down, addresses released, backend releases our ports ─▶ future
import BYSTProto
import NIOCore

final class HAService {
    let backend: RegistryBackend
    /// With `[ha]`: our ports' roles.
    private(set) var controller: HAController?
    private var virtualAddresses: VirtualAddressKeeper?
    private var notifier: HANotifier?
    private var stopped = false

    /// The backend of `node`'s `registry` (nil: none), not started yet: etcd's TLS context and
    /// password are loaded here, so a file gone bad since the config was checked stops the start.
    static func make(for node: Node) throws(EtcdSecurity.Failure) -> HAService? {
        guard let registry = node.config.registry else { return nil }
        switch registry.service {
        case .peer(let name):
            return HAService(backend: EmbeddedRegistryClient(node: node, peerName: name, lease: registry.lease))
        case .etcd(let members, _):
            return HAService(backend: EtcdRegistryClient(
                endpoints: members, nodeName: node.config.name, lease: registry.lease,
                security: try EtcdSecurity(registry), eventLoop: node.eventLoop, logger: node.logger))
        }
    }

    private init(backend: RegistryBackend) {
        self.backend = backend
    }

    /// The backend when it is the embedded registry's client (it follows its peer's links).
    var embedded: EmbeddedRegistryClient? { backend as? EmbeddedRegistryClient }

    /// Starts the backend, watches `ports` (the `port:NAME` endpoints) and, with `[ha]`,
    /// starts claiming our ports. Events go to `onEvent` (the node's `registryEvent`).
    func start(node: Node, watching ports: [String], onEvent: @escaping (RegistryEvent) -> Void) {
        backend.onEvent = onEvent
        backend.start()
        for port in ports { backend.watch(port) }
        guard let ha = node.config.ha, let registry = node.config.registry else { return }
        let addresses = VirtualAddressKeeper(config: ha, eventLoop: node.eventLoop, logger: node.logger)
        addresses.removeLeftovers()
        virtualAddresses = addresses
        notifier = HANotifier(config: ha, eventLoop: node.eventLoop, logger: node.logger)
        let controller = HAController(config: ha, lease: registry.lease, backend: backend, node: node)
        controller.onRoleChanged = { [unowned self] in roleChanged(port: $0, to: $1, reason: $2) }
        self.controller = controller
        controller.start()
    }

    func handle(_ event: RegistryEvent) { controller?.handle(event) }

    /// `port`'s role changed: its virtual addresses follow — added once the role is active
    /// (lease confirmed), removed as it steps down — then its notify command.
    private func roleChanged(port: String, to role: GatewayRole.State, reason: String) {
        switch role {
        case .active: virtualAddresses?.activate(port)
        case .standby, .claiming: virtualAddresses?.standDown(port)
        }
        notifier?.notify(port: port, role: role, reason: reason)
    }

    /// Our ports stepped down and their addresses released at once (a standby takes over in
    /// one round trip, not one lease); done when the registry answered the release. The
    /// service stays (its controller's registry calls may still answer); once is enough.
    func stop() -> EventLoopFuture<Void> {
        guard !stopped else { return backend.stop() }
        stopped = true
        controller?.stop()
        virtualAddresses?.releaseAll()
        notifier?.stop()
        return backend.stop()
    }
}
