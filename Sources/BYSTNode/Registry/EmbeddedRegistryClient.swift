import BYSTProto
import Logging
import NIOCore

/// The embedded registry as a backend: one `@registry` stream to the peer that runs
/// `byst registry serve`, over the normal authenticated session with it.
///
/// Each (re)opened stream starts with a hello that relets the ports we hold; a keepalive
/// every quarter lease keeps the lease; every answered request confirms it
/// (`validUntil` = that request's send time + lease − margin). A request unanswered for a
/// lease means the stream is stuck: it is dropped and reopened.
///
/// The registry releases a closed connection's ports after its close grace (from the
/// welcome): when our session with it loses its last link we say so (`sessionDropped`), and
/// when a link is back we send a keepalive at once, whose answer confirms we are back; a
/// re-dial refused outright (no registry process), or a stream reset by a restarted
/// registry, is reported too (`registryStateGone`).
final class EmbeddedRegistryClient: RegistryBackend {
    var onEvent: ((RegistryEvent) -> Void)?
    private(set) var validUntil: Nanoseconds?
    private(set) var isConnected = false

    private unowned let node: Node
    private let peerName: String
    private var lease: Duration
    /// From the welcome: how soon after our connection closes the registry releases our ports.
    private var closeGrace: Duration = .zero
    /// When our session with the registry lost its last link, until a link is back and a
    /// later request is answered, or a re-dial is refused.
    private var droppedAt: Nanoseconds?
    private var stream: RegistryStream?
    private var nextRequestID: UInt32 = 1
    private var pending: [UInt32: (sent: Nanoseconds, done: (RegistryReply?) -> Void)] = [:]
    /// Ports we own, with the info published for each: relet on every reconnect.
    private var owned: [String: String] = [:]
    private var watched: Set<String> = []
    private var tick: Scheduled<Void>?
    private var reconnect: Scheduled<Void>?
    private var stopped = false

    init(node: Node, peerName: String, lease: Duration) {
        self.node = node
        self.peerName = peerName
        self.lease = lease
    }

    var description: String { "embedded registry via peer '\(peerName)'" }

    func start() {
        openStream()
        scheduleKeepalive()
    }

    private func scheduleKeepalive() {
        guard !stopped else { return }
        tick = node.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(lease.nanoseconds / 4))) { [unowned self] in
            keepalive()
            scheduleKeepalive()
        }
    }

    @discardableResult
    func stop() -> EventLoopFuture<Void> {
        guard !stopped else { return node.eventLoop.makeSucceededVoidFuture() }
        stopped = true
        tick?.cancel()
        reconnect?.cancel()
        onEvent = nil
        let released = node.eventLoop.makePromise(of: Void.self)
        let ports = owned.keys.sorted()
        owned.removeAll()
        guard let stream, !ports.isEmpty else {
            finishStream()
            released.succeed()
            return released.futureResult
        }
        // Done once every release is answered, or failed (the stream ended). The stream is
        // finished only then: finished, it would drop the answers. Until then the requests
        // waiting for them keep this client.
        stream.onClose = { [weak self] _ in self?.failPending() }
        var unanswered = ports.count
        for port in ports {
            send(.unregister(port: port)) { [self] reply in
                if case .none = reply { node.logger.debug("registry: the release of port \(port) was not answered") }
                unanswered -= 1
                guard unanswered == 0 else { return }
                finishStream()
                released.succeed()
            }
        }
        return released.futureResult
    }

    /// Ends the stream after what is queued (a reset would drop it).
    private func finishStream() {
        stream?.onClose = nil
        stream?.finish()
        stream = nil
    }

    // MARK: Operations

    func register(_ port: String, info: String, completion: @escaping (Result<RegisterOutcome, RegistryFailure>) -> Void) {
        guard isConnected else { return completion(.failure(RegistryFailure("not connected to the registry"))) }
        send(.register(port: port, info: info)) { [unowned self] reply in
            switch reply {
            case .registered:
                owned[port] = info
                completion(.success(.owned))
            case .taken(let owner, let info):
                completion(.success(.taken(PortOwner(node: owner, info: info))))
            case .retryLater(let milliseconds):
                completion(.failure(RegistryFailure("the registry restarted; previous owners may relet for \(milliseconds) ms")))
            case .error(let code, let text):
                completion(.failure(RegistryFailure("registry refused: \(text)", denied: code == .notAllowed)))
            case nil:
                completion(.failure(RegistryFailure("registry connection lost")))
            default:
                completion(.failure(RegistryFailure("unexpected registry reply \(String(describing: reply))")))
            }
        }
    }

    func unregister(_ port: String) {
        guard owned.removeValue(forKey: port) != nil else { return }
        send(.unregister(port: port)) { _ in }
    }

    func watch(_ port: String) {
        guard watched.insert(port).inserted, isConnected else { return }
        startWatching(port)
    }

    private func startWatching(_ port: String) {
        send(.watch(port: port)) { _ in }
        send(.query(port: port)) { [unowned self] reply in
            guard case .owner(let owner) = reply else { return }
            onEvent?(.owner(port: port, owner.map { PortOwner(node: $0.node, info: $0.info) }))
        }
    }

    // MARK: Stream

    private func openStream() {
        guard !stopped, stream == nil else { return }
        guard let session = node.peer(named: peerName)?.sessionForNewStream() else { return scheduleReconnect() }
        let stream = RegistryStream(session: session)
        guard let id = session.openStream(target: RegistryStream.target, endpoint: stream) else { return scheduleReconnect() }
        stream.id = id
        stream.onMessage = { [unowned self] message in received(message) }
        stream.onClose = { [unowned self, unowned stream] reason in streamEnded(reason, peerRestarted: stream.peerRestarted) }
        self.stream = stream
        let leaseMilliseconds = UInt32(clamping: lease.nanoseconds / 1_000_000)
        let relet = owned.sorted { $0.key < $1.key }.map { RegistryPortClaim(port: $0.key, info: $0.value) }
        send(.hello(leaseMilliseconds: leaseMilliseconds, relet: relet)) { [unowned self] reply in
            guard case .welcome(_, let closeGrace, let ports) = reply else { return }
            self.closeGrace = .milliseconds(Int64(closeGrace))
            isConnected = true
            let kept = Set(ports)
            for port in owned.keys.sorted() where !kept.contains(port) {
                owned[port] = nil
                onEvent?(.lost(port: port))
            }
            node.logger.info("registry: connected (\(description), lease \(lease), \(kept.count) ports relet)")
            onEvent?(.connected)
            for port in watched.sorted() { startWatching(port) }
        }
    }

    private func streamEnded(_ reason: String, peerRestarted: Bool = false) {
        stream = nil
        if peerRestarted, droppedAt != nil { stateGone("the registry restarted (it reset our stream)") }
        failPending()
        if isConnected {
            isConnected = false
            node.logger.warning("registry: connection lost (\(reason)); ports held until the lease runs out")
            onEvent?(.disconnected(reason: reason))
        }
        scheduleReconnect()
    }

    /// Every request waiting for an answer gets none (its stream ended), oldest first.
    private func failPending() {
        let failed = pending.values.sorted { $0.sent < $1.sent }
        pending.removeAll()
        for request in failed { request.done(nil) }
    }

    private func scheduleReconnect() {
        guard !stopped, reconnect == nil else { return }
        reconnect = node.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(250)) { [unowned self] in
            reconnect = nil
            openStream()
        }
    }

    private func send(_ request: RegistryRequest, done: @escaping (RegistryReply?) -> Void) {
        guard let stream else { return done(nil) }
        let id = nextRequestID
        nextRequestID = nextRequestID == UInt32.max ? 1 : nextRequestID + 1
        pending[id] = (Clocks.monotonic(), done)
        stream.send(.request(id: id, request))
    }

    private func received(_ message: RegistryMessage) {
        switch message {
        case .reply(let id, let reply):
            guard let request = pending.removeValue(forKey: id) else { return }
            switch reply {
            case .error(.helloFirst, _):
                stream?.close()
                return streamEnded("the registry forgot our hello")
            case .error:
                break  // refused before it counted as a renewal
            case .welcome(let granted, _, _):
                lease = .milliseconds(Int64(granted))
                confirm(sentAt: request.sent)
            default:
                confirm(sentAt: request.sent)
            }
            request.done(reply)
        case .notice(.ownerChanged(let port, let owner)):
            onEvent?(.owner(port: port, owner.map { PortOwner(node: $0.node, info: $0.info) }))
        case .notice(.lost(let port)):
            guard owned.removeValue(forKey: port) != nil else { return }
            onEvent?(.lost(port: port))
        case .notice(.message(let from, let port, let body)):
            node.logger.info("registry: message for port '\(port)' from '\(from)': \(body.prefix(200))")
        case .request:
            stream?.close()
        }
    }

    /// The registry answered a request sent at `sentAt`: it renewed our lease no earlier.
    private func confirm(sentAt: Nanoseconds) {
        let until = sentAt + lease.nanoseconds - leaseSafetyMargin(lease).nanoseconds
        let back = droppedAt.map { sentAt > $0 } ?? false
        if back {
            droppedAt = nil
            node.logger.info("registry: back after the connection closed; our ports stay")
        }
        guard until > validUntil ?? 0 || back else { return }
        validUntil = max(validUntil ?? 0, until)
        onEvent?(.renewed(validUntil: until, sentAt: sentAt))
    }

    // MARK: Session with the registry

    private func isRegistrySession(_ session: SessionRuntime) -> Bool {
        session.peer.config.name == peerName && (stream.map { $0.session === session } ?? true)
    }

    /// Our session with the registry has no link left (whichever end closed it): the
    /// registry may be counting its close grace; the slots re-dial on their own.
    func sessionLostLinks(_ session: SessionRuntime) {
        guard !stopped, isRegistrySession(session), isConnected, closeGrace > .zero, droppedAt == nil else { return }
        droppedAt = Clocks.monotonic()
        node.logger.warning("registry: connection closed; re-dialing (the registry releases our ports in \(closeGrace) unless we are back)")
        onEvent?(.sessionDropped(closeGrace: closeGrace))
    }

    /// A link to the registry is up again: prove at once that we are alive.
    func sessionRegainedLink(_ session: SessionRuntime) {
        guard !stopped, isRegistrySession(session), droppedAt != nil, isConnected else { return }
        send(.keepalive) { _ in }
    }

    /// A re-dial after a drop was refused (RST to our SYN): no registry process listens, so
    /// none can give our ports away; a restarted one lets us relet them. The lease decides.
    func dialFailed(peer: PeerRuntime, cause: DialFailureCause) {
        guard peer.config.name == peerName, droppedAt != nil, case .refused(_, .endpoint) = cause else { return }
        stateGone("re-dial refused (\(cause)): no registry runs there")
    }

    private func stateGone(_ reason: String) {
        droppedAt = nil
        node.logger.warning("registry: \(reason); our ports hold until the lease runs out")
        onEvent?(.registryStateGone(reason: reason))
    }

    private func keepalive() {
        let now = Clocks.monotonic()
        if let oldest = pending.values.map(\.sent).min(), now - oldest > lease.nanoseconds {
            node.logger.warning("registry: no answer for \(lease); reconnecting")
            let stuck = stream
            stuck?.close()
            return streamEnded("no answer within the lease")
        }
        guard isConnected else { return openStream() }
        send(.keepalive) { _ in }
    }
}
