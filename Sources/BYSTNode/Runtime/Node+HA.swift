// The node's side of HA (docs/ARCHITECTURE.md §5, docs/OPERATIONS.md "High availability"):
//
//   HAService's backend ─RegistryEvent─▶ registryEvent ─▶ HAController (our [ha] ports)
//                                                      └▶ PeerRuntime.follow (port:NAME peers)
//   HAController ─activate port P─▶ add P's [ha] addresses, on_active (HAService); bind link
//                                  listeners (if none), routes of the peers served
//                ─step down port P─▶ remove P's [ha] addresses, on_standby (HAService); close the accepted
//                                    links of peers no longer served, their routes; the
//                                    listeners once no port is active
//   a peer is served while we are active for its `ha_port` (none: for any port)
import BYSTProto
import NIOCore

extension Node {
    func startRegistry() {
        ha?.start(node: self, watching: Set(peers.compactMap(\.config.endpoint?.portName)).sorted()) { [unowned self] event in
            registryEvent(event)
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
        ha?.handle(event)
    }

    /// The last link of `session` closed (`closedByRemote`: by the peer's end). The registry
    /// we serve may release that client's ports after its close grace; if the peer is our
    /// embedded registry, our gateway role must be confirmed again soon (GatewayRole).
    func sessionLostLinks(_ session: SessionRuntime, closedByRemote: Bool) {
        registryServer?.clientLostLinks(session, closedByRemote: closedByRemote)
        ha?.embedded?.sessionLostLinks(session)
    }

    /// `session` has a link again (after having none, or its first).
    func sessionRegainedLink(_ session: SessionRuntime) {
        registryServer?.clientRegainedLink(session)
        ha?.embedded?.sessionRegainedLink(session)
    }

    /// A dial to `peer` failed before its handshake (the embedded registry client wants to
    /// know whether its registry refused the connection: then no registry process runs).
    func peerDialFailed(_ peer: PeerRuntime, cause: DialFailureCause) {
        ha?.embedded?.dialFailed(peer: peer, cause: cause)
    }

    /// Whether we serve `peer` now: accept its links and route its prefixes here. Without
    /// `[ha]` always; with it while active for its `ha_port`, or for any port if it names none.
    func serves(_ peer: PeerConfig) -> Bool { servedPeers.serves(peer) }

    /// Which peers this node serves now, as a value (for a pool thread, or a loop over peers).
    var servedPeers: ServedPeers {
        guard config.ha != nil else { return ServedPeers(everyPeer: true, activePorts: []) }
        return ServedPeers(everyPeer: false, activePorts: ha?.controller?.activePorts ?? [])
    }

    /// We own HA `port`: accept links (listeners are up while any port is active) and route
    /// the prefixes of the peers we now serve.
    func activateGateway(port: String) {
        if !linkListeners.isBound {
            EventLoopFuture.andAllSucceed(linkListeners.bind(), on: eventLoop).whenFailure { [logger] error in
                logger.error("HA: a link listener could not be bound: \(error)")
            }
        }
        syncRoutes(context: "HA")
    }

    /// We no longer own HA `port` (or are shutting down): another gateway may own it any
    /// moment, so stop serving its peers at once — their accepted links closed, their routes
    /// gone; listeners closed once no port is active.
    func stepDownGateway(port: String, reason: String) {
        if ha?.controller?.anyActive != true {
            linkListeners.close()
        }
        closeUnservedLinks("this gateway stepped down for HA port '\(port)' (\(reason))")
        syncRoutes(context: "HA")
    }

    /// Closes the accepted links of the peers we do not serve (now, or after a reload moved
    /// a peer to another `ha_port`).
    func closeUnservedLinks(_ reason: String) {
        let served = servedPeers
        for peer in peers where !served.serves(peer.config) {
            for session in peer.incoming.values {
                for link in session.links.values.sorted(by: { $0.id < $1.id }) { link.fail(reason, level: .info, deliberate: true) }
            }
        }
    }

    /// Puts the `allowed_ips` of exactly the peers we serve into the kernel (the list is read
    /// here, worked out on a pool thread: TunService.syncKernelRoutes).
    func syncRoutes(context: String) {
        let peers = config.peers, served = servedPeers
        tun?.syncKernelRoutes(context: context) { peers.filter(served.serves).flatMap(\.allowedIPs) }
    }
}

/// Which peers' prefixes a node routes and whose links it keeps: every peer without `[ha]`;
/// with it, a peer with an HA port when that port is active here, one without when any is.
struct ServedPeers: Sendable {
    let everyPeer: Bool
    let activePorts: Set<String>

    func serves(_ peer: PeerConfig) -> Bool {
        everyPeer || (peer.haPort.map(activePorts.contains) ?? !activePorts.isEmpty)
    }
}
