// The node's side of HA (docs/ARCHITECTURE.md §5, docs/OPERATIONS.md "High availability"):
//
//   registry backend ─RegistryEvent─▶ registryEvent ─▶ HAController (our [ha] port)
//                                                   └▶ PeerRuntime.follow (port:NAME peers)
//   HAController ─activate─▶ bind link listeners, install routes, add [ha] addresses, on_active
//                ─step down─▶ remove [ha] addresses, close listeners and accepted links,
//                             remove routes, on_standby
import BYSTProto
import NIOCore
import Tun

extension Node {
    /// The backend of `registry`, not started yet: etcd's TLS context and password are loaded
    /// here, so a file gone bad since the config was checked stops the start.
    func makeRegistryBackend() throws(EtcdSecurity.Failure) {
        guard let registry = config.registry else { return }
        switch registry.service {
        case .peer(let name):
            registryBackend = EmbeddedRegistryClient(node: self, peerName: name, lease: registry.lease)
        case .etcd(let members, _):
            registryBackend = EtcdRegistryClient(endpoints: members, nodeName: config.name, lease: registry.lease,
                                                 security: try EtcdSecurity(registry), eventLoop: eventLoop, logger: logger)
        }
    }

    func startRegistry() {
        guard let registry = config.registry, let backend = registryBackend else { return }
        backend.onEvent = { [unowned self] event in registryEvent(event) }
        backend.start()
        for port in Set(peers.compactMap(\.config.endpoint?.portName)).sorted() { backend.watch(port) }
        if let ha = config.ha {
            let addresses = VirtualAddressKeeper(config: ha, eventLoop: eventLoop, logger: logger)
            addresses.removeLeftovers()
            virtualAddresses = addresses
            haNotifier = HANotifier(config: ha, eventLoop: eventLoop, logger: logger)
            let controller = HAController(config: ha, lease: registry.lease, backend: backend, node: self)
            haController = controller
            controller.start()
        }
    }

    func registryEvent(_ event: RegistryEvent) {
        switch event {
        case .connected: metrics.registryConnection(up: true)
        case .disconnected: metrics.registryConnection(up: false)
        case .owner(let port, let owner):
            for peer in peers where peer.config.endpoint?.portName == port { peer.follow(owner) }
        case .renewed, .lost, .sessionDropped, .registryStateGone: break
        }
        haController?.handle(event)
    }

    /// The last link of `session` closed (`closedByRemote`: by the peer's end). The registry
    /// we serve may release that client's ports after its close grace; if the peer is our
    /// embedded registry, our gateway role must be confirmed again soon (GatewayRole).
    func sessionLostLinks(_ session: SessionRuntime, closedByRemote: Bool) {
        registryServer?.clientLostLinks(session, closedByRemote: closedByRemote)
        (registryBackend as? EmbeddedRegistryClient)?.sessionLostLinks(session)
    }

    /// `session` has a link again (after having none, or its first).
    func sessionRegainedLink(_ session: SessionRuntime) {
        registryServer?.clientRegainedLink(session)
        (registryBackend as? EmbeddedRegistryClient)?.sessionRegainedLink(session)
    }

    /// A dial to `peer` failed before its handshake (the embedded registry client wants to
    /// know whether its registry refused the connection: then no registry process runs).
    func peerDialFailed(_ peer: PeerRuntime, cause: DialFailureCause) {
        (registryBackend as? EmbeddedRegistryClient)?.dialFailed(peer: peer, cause: cause)
    }

    /// `port`'s role changed (HAController): its virtual addresses follow — added once the
    /// role is active (lease confirmed), removed as it steps down — then its notify command.
    func haRoleChanged(port: String, to role: GatewayRole.State, reason: String) {
        switch role {
        case .active: virtualAddresses?.activate(port)
        case .standby, .claiming: virtualAddresses?.standDown(port)
        }
        haNotifier?.notify(port: port, role: role, reason: reason)
    }

    /// We own our HA port: accept links and route the peers' prefixes here.
    func activateGateway() {
        let binds = bindLinkListeners()
        EventLoopFuture.andAllSucceed(binds, on: eventLoop).whenFailure { [logger] error in
            logger.error("HA: a link listener could not be bound: \(error)")
        }
        setRoutes(installed: true)
    }

    /// We no longer own our HA port (or are shutting down): another gateway may own it any
    /// moment, so stop serving at once — no new links, accepted links closed, routes gone.
    func stepDownGateway(reason: String) {
        for listener in linkListeners { listener.close() }
        linkListeners.removeAll()
        for peer in peers {
            for session in peer.incoming.values {
                for link in session.links.values.sorted(by: { $0.id < $1.id }) {
                    link.fail("this gateway stepped down (\(reason))", level: .info)
                }
            }
        }
        setRoutes(installed: false)
    }

    private func setRoutes(installed: Bool) {
        guard installed != routesInstalled, let device = tunDevice, let tun = config.tun else { return }
        let routes = peers.flatMap(\.config.allowedIPs)
        do throws(NetlinkSocket.Failure) {
            try InterfaceConfigurator.updateRoutes(interface: device.name, addresses: tun.addresses,
                                                   adding: installed ? routes : [], removing: installed ? [] : routes)
            routesInstalled = installed
        } catch {
            logger.error("HA: routes through \(device.name): \(error)")
        }
    }
}
