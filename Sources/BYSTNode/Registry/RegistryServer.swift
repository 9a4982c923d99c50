import BYSTProto
import Logging
import NIOCore

/// The embedded registry (`byst registry serve`): the node accepts `@registry` streams from
/// its peers and answers them from one in-memory `RegistryService`. A client is its peer
/// name here — proven by its PSK, so nobody can relet or release another node's ports — and
/// may own only the ports its `[[peer]] ports` list (deny by default).
final class RegistryServer {
    private unowned let node: Node
    private var service: RegistryService
    /// Each client's current stream (a reconnect replaces the old one).
    private var streams: [RegistryClientID: RegistryStream] = [:]
    private var timer: Scheduled<Void>?
    private var timerDeadline: Nanoseconds?
    private(set) var requests: UInt64 = 0
    /// Port claims refused because the client may not own the port.
    private(set) var denied: UInt64 = 0

    init(node: Node, grace: Duration, closeGrace: Duration) {
        self.node = node
        service = RegistryService(configuration: .init(grace: grace, closeGrace: closeGrace), now: Clocks.monotonic(), limits: node.config.limits.registry,
                                  permissions: Self.permissions(node.config))
    }

    static func permissions(_ config: NodeConfig) -> RegistryPermissions {
        RegistryPermissions(Dictionary(config.peers.map { (RegistryClientID($0.name), Set($0.ports)) }, uniquingKeysWith: { $0.union($1) }))
    }

    /// The config was reloaded: ports a client may no longer own are taken from it now.
    func configChanged() {
        service.updatePermissions(Self.permissions(node.config))
        deliverNotices()
    }

    var clientCount: Int { streams.count }
    var registry: PortRegistry { service.registry }

    /// A peer opened the registry stream.
    func accept(_ id: UInt32, in session: SessionRuntime) {
        let client = RegistryClientID(session.peer.config.name)
        let stream = RegistryStream(session: session)
        stream.id = id
        session.register(stream, for: id)
        if let old = streams[client] {
            old.onClose = nil
            old.close()
            service.streamClosed(client)
        }
        streams[client] = stream
        stream.onMessage = { [unowned self, unowned stream] message in
            guard case .request(let requestID, let request) = message else {
                return stream.send(.reply(id: 0, .error(.badRequest, "expected a request")))
            }
            requests += 1
            let reply = service.handle(request, from: client, now: Clocks.monotonic())
            if case .error(.limit, let detail) = reply { countLimit(request, detail: detail, client: client) }
            reportDenials()
            stream.send(.reply(id: requestID, reply))
            deliverNotices()
        }
        stream.onClose = { [unowned self, unowned stream] reason in
            guard streams[client] === stream else { return }
            streams[client] = nil
            service.streamClosed(client)
            node.logger.debug("registry client '\(client)' stream ended: \(reason)")
        }
    }

    /// The client's session lost its last link. Closed by the client's end (FIN/RST: its
    /// process is gone, or it closed the link itself and re-dials): its ports go after the
    /// close grace unless it comes back. Closed by us (dead-link timeout: a silent partition)
    /// changes nothing: the lease decides.
    func clientLostLinks(_ session: SessionRuntime, closedByRemote: Bool) {
        let client = RegistryClientID(session.peer.config.name)
        guard closedByRemote, streams[client]?.session === session, !service.registry.ports(of: client).isEmpty else { return }
        node.logger.info("registry: client '\(client)' closed its connection; its ports go in \(service.registry.configuration.closeGrace) unless it comes back")
        service.sessionClosed(client, now: Clocks.monotonic())
        rearm()
    }

    /// The client's session has a link again: it is alive, its ports stay.
    func clientRegainedLink(_ session: SessionRuntime) {
        let client = RegistryClientID(session.peer.config.name)
        guard streams[client]?.session === session, service.registry.isClosing(client) else { return }
        node.logger.info("registry: client '\(client)' is back; its ports stay")
        service.sessionResumed(client)
    }

    /// A request refused by `registry_ports` / `registry_watches` (or the message size cap).
    private func countLimit(_ request: RegistryRequest, detail: String, client: RegistryClientID) {
        let limit: ResourceLimit
        switch request {
        case .hello, .register: limit = .registryPorts
        case .watch: limit = .registryWatches
        default: return
        }
        node.limitHit(limit, "registry client '\(client)': \(detail)")
    }

    private func reportDenials() {
        for (client, port) in service.takeDenials() {
            denied += 1
            node.metrics.registryDenied()
            node.logLimiter.log(.registryDenial, level: .warning,
                                "registry: refused port '\(port)' to client '\(client)': not in its [[peer]] ports",
                                to: node.logger)
        }
    }

    private func deliverNotices() {
        for (client, notice) in service.notices(now: Clocks.monotonic()) {
            if case .lost(let port) = notice { node.logger.info("registry: '\(client)' lost port '\(port)' (its connection closed, its lease ran out, or its permission was withdrawn)") }
            streams[client]?.send(.notice(notice))
        }
        rearm()
    }

    /// Renewals only push deadlines later: the timer moves only when one comes earlier, and
    /// a timer that fires early finds nothing and re-arms (one timer, not one per request).
    private func rearm() {
        guard let deadline = service.nextDeadline else { return }
        if timer != nil, let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = node.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [unowned self] in
            timer = nil
            timerDeadline = nil
            deliverNotices()
        }
    }

    func stop() {
        timer?.cancel()
        timer = nil
        for stream in streams.values { stream.onClose = nil; stream.close() }
        streams.removeAll()
    }
}
