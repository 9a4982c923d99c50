// The node: the composition root of one running BYST node. It owns the peers and their
// sessions, and composes the services around them; everything runs on one event loop
// (docs/ARCHITECTURE.md §3.4).
//
//   LinkListeners (byst://, http(s)://) ─▶ LinkHandler(responder) ─▶ attachResponderLink ─▶ PeerRuntime.incoming
//   peers with endpoints ─▶ LinkSlot × links ─▶ LinkHandler(initiator) ─▶ PeerRuntime.outgoing
//   TunService: the TUN, its data planes (which take established plain links) and routes
//   ForwardService: [[forward]] listeners ─▶ streams; acceptStream (allow_targets) ─▶ targets
//   HAService: registry backend ─events─▶ HAController (active: listeners + routes) / port:NAME peers
//   control socket ─▶ status JSON;  metrics_listen ─▶ MetricsHTTPHandler (Prometheus text)
//   `@registry` streams ─▶ RegistryServer (`byst registry serve`)
//
// Start binds and starts each; shutdown stops them in order, each step waiting on an event
// (the registry's answer, the links' flushes), bounded by `shutdownFlushLimit`.
import BYSTProto
import Logging
import NIOCore
import NIOPosix
import NIOSSL

final class Node {
    /// Replaced by a successful reload (Node+Reload.swift); node-level settings never change.
    var config: NodeConfig {
        didSet { peerFeatures = PeerFeatures(config) }
    }
    /// What some peer of `config` uses, for what a responder link offers before it knows its
    /// peer: worked out when the config changes, not per accepted link (a hub has 10,000 peers).
    private(set) var peerFeatures: PeerFeatures
    /// Where `config` came from, for reloads (nil for nodes built from a value in tests).
    let configPath: String?
    let eventLoop: EventLoop
    let logger: Logger
    let sessionConfig: SessionConfig
    let recordLimits: RecordLimits
    /// `[limits] handshake_timeout`: for accepted links, and an HTTP request head.
    let handshakeTimeout: TimeAmount
    /// Links we dial: the time also covers a proxy's CONNECT and TLS, so it is not shortened
    /// with `handshake_timeout` (which is about strangers' connections).
    static let dialHandshakeTimeout: TimeAmount = .seconds(10)
    var replayFilter = HandshakeReplayFilter()
    var handshakeFailures = 0
    /// Per-source rate limiting (on the accept threads) and the pending-handshake table of
    /// the link listeners (Links/LinkAdmission.swift).
    let acceptGate: AcceptGate
    let admission: LinkAdmission
    /// With `metrics_listen`: measures the loop's lateness every 10 ms for
    /// `byst_event_loop_lag_seconds` while the node is watched (`watchLoop`): a probe running
    /// all the time cost an idle hub 1 % of a core.
    private var metricsLoopProbe: LoopLagProbe?
    /// Until when (monotonic ns) `metricsLoopProbe` runs.
    private var loopWatchedUntil: UInt64 = 0
    /// Lines strangers can cause go through here (Support/LogLimiter.swift).
    let logLimiter = LogLimiter()
    /// This node's own metric registry (Metrics/NodeMetrics.swift), served on `metrics_listen`.
    let metrics: NodeMetrics
    var peers: [PeerRuntime] = [] { didSet { peersByName = nil } }
    /// `peers` by name, made at the first lookup after they change (a forward's connection
    /// looks its peer up by name: a hub has thousands).
    private var peersByName: [String: PeerRuntime]?
    var peersByKeyID: [KeyID: PeerRuntime] = [:]
    private var channels: [Channel] = []
    /// `[[forward]]` listeners, and the connections to stream targets (ForwardService.swift).
    private(set) lazy var forwards = ForwardService(eventLoop: eventLoop, logger: logger) { [unowned self] name in
        peer(named: name)?.sessionForNewStream()
    }
    private var linkCounter = 0
    /// The TUN, its data planes and routes, when `[tun]` is configured (TunService.swift).
    private(set) var tun: TunService?
    /// Packets for the TUN and session pumps, at the end of each loop tick (EndOfTick.swift).
    private(set) lazy var endOfTick = EndOfTick(node: self)
    /// The full-size write batch buffers the links on the loop take turns with (LinkHandler.pump).
    let writeBuffers = WriteBufferPool()
    let startedAt = Clocks.monotonic()
    let splitRegistry: SplitRegistry
    private let serverTLS: NIOSSLContext?
    /// Link listeners (byst://, http(s)://): bound at start, or with `[ha]` while active.
    private(set) lazy var linkListeners = LinkListeners(node: self, serverTLS: serverTLS)
    /// `registry` in the config: its backend, and the HA role it drives (HAService.swift).
    private(set) var ha: HAService?
    /// Set by `byst registry serve`.
    var registryServer: RegistryServer?
    /// The next sample of the peers' byte counters for their rates (Node+Traffic.swift).
    var trafficSample: Scheduled<Void>?
    /// Peers a reload removed, held while their links close (Node+Reload.swift, `retire`).
    var retiredPeers: [PeerRuntime] = []
    /// The reload being applied, if any: the next one waits for it.
    var reloadInProgress: EventLoopFuture<Void>?

    enum StartError: Error, CustomStringConvertible {
        case missingKey(peer: String, key: String, store: String, storeExists: Bool)
        case sharedKey(String, String)
        var description: String {
            switch self {
            case .missingKey(let peer, let key, let store, let storeExists):
                storeExists ? "peer '\(peer)': key '\(key)' is not in the key store \(store): create it with `byst key gen \(key)` or `byst key import \(key)`"
                    : "peer '\(peer)': " + KeyStore.missingStoreAdvice(path: store, keys: [key])
            case .sharedKey(let a, let b): "peers '\(a)' and '\(b)' use the same key: give each peer its own"
            }
        }
    }

    init(config: NodeConfig, keys: KeyStore, eventLoop: EventLoop, logger: Logger, configPath: String? = nil) throws {
        self.config = config
        peerFeatures = PeerFeatures(config)
        self.configPath = configPath
        self.eventLoop = eventLoop
        metrics = NodeMetrics(perPeer: config.metricsPeers)
        var logger = logger
        logger[metadataKey: "node"] = "\(config.name)"
        self.logger = logger
        var session = SessionConfig()
        session.keepaliveInterval = config.keepaliveInterval
        session.deadLinkTimeout = config.deadLinkTimeout
        session.idleKeepaliveInterval = config.idleKeepaliveInterval
        session.linger = config.sessionLinger
        config.limits.apply(to: &session)
        sessionConfig = session
        recordLimits = RecordLimits(maxPayload: config.maxRecordPayload)
        handshakeTimeout = .nanoseconds(Int64(clamping: config.limits.handshakeTimeout.nanoseconds))
        acceptGate = AcceptGate(limits: config.limits, metrics: metrics, logger: logger)
        admission = LinkAdmission(limits: config.limits)
        splitRegistry = SplitRegistry(eventLoop: eventLoop, pairingTimeout: Self.dialHandshakeTimeout)
        serverTLS = try TLSSetup.serverContext(config.http)
        for peerConfig in config.peers {
            peers.append(try makePeer(peerConfig, keys: keys))
        }
        peersByKeyID = try Self.index(peers)
    }

    func makePeer(_ peerConfig: PeerConfig, keys: KeyStore) throws -> PeerRuntime {
        guard let (key, next) = keys.keys(named: peerConfig.key) else {
            throw StartError.missingKey(peer: peerConfig.name, key: peerConfig.key, store: keys.path, storeExists: keys.fileExists)
        }
        return try PeerRuntime(config: peerConfig, key: key, nextKey: next, node: self)
    }

    /// Every accepted key id (current and, during rotations, next) to its peer.
    static func index(_ peers: [PeerRuntime]) throws(StartError) -> [KeyID: PeerRuntime] {
        var index: [KeyID: PeerRuntime] = [:]
        for peer in peers {
            for id in peer.keyIDs {
                if let other = index[id], other !== peer { throw StartError.sharedKey(other.config.name, peer.config.name) }
                index[id] = peer
            }
        }
        return index
    }

    func nextLinkID() -> LinkID {
        linkCounter += 1
        return LinkID(linkCounter)
    }

    /// A status or reload request, or a metrics scrape, arrived: the loop-lag probe measures
    /// how long it (and anything else) holds the loop, for 2 s from now.
    func watchLoop() {
        guard let probe = metricsLoopProbe else { return }
        loopWatchedUntil = Clocks.monotonic() + 2_000_000_000
        probe.start()
    }

    /// A link accepted by a listener; `binding` is the split-mode token it was paired by.
    func makeResponderLink(binding: [UInt8]) -> LinkHandler {
        // The peer is known only from message 1's key id: offer compression if any peer may
        // use it; the link then applies that peer's `compression` (LinkHandler).
        var features: LinkFeatures = peerFeatures.compression ? [.compression] : []
        // Every stream this node receives is reassembled by offset (PROTOCOL.md §5.3).
        features.formUnion([.streamStriping, .closeReasons])
        if tun?.offloads != nil { features.insert(.gsoPackets) }
        if config.keepsIdleLinksCheaply { features.insert(.idleKeepalive) }
        // Like compression: offered if any peer stripes; a peer that offers it too gets its
        // sequenced packets reordered, and ours striped only if its `packet_striping` is on.
        if reordersPackets, peerFeatures.packetStriping { features.insert(.sequencedPackets) }
        return LinkHandler(id: nextLinkID(), node: self, responder: LinkResponder(
            local: .init(nodeName: config.name, features: features, limits: recordLimits, transportBinding: binding)))
    }

    /// Sequenced packets can be put back in order here: the data planes own the links
    /// (`[tun] data_plane`), and reorder what arrives on them (PROTOCOL.md §5.4).
    var reordersPackets: Bool { config.tun?.dataPlane == true }

    /// The configured PSK with this key id, for responders (PROTOCOL.md §3.4 step 4).
    func key(for id: KeyID) -> PreSharedKey? { peersByKeyID[id]?.key(for: id) }

    func peer(named name: String) -> PeerRuntime? {
        if let peersByName { return peersByName[name] }
        let index = Dictionary(peers.map { ($0.config.name, $0) }, uniquingKeysWith: { first, _ in first })
        peersByName = index
        return index[name]
    }

    // MARK: Start and stop

    func start() -> EventLoopFuture<Void> {
        do {
            ha = try HAService.make(for: self)
            try startTun()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        var binds: [EventLoopFuture<Void>] = []
        // An HA gateway accepts links only while it owns its port (Node+HA.swift).
        if config.ha == nil { binds += linkListeners.bind() }
        binds += config.forwards.map(forwards.listen)
        for address in config.metricsListen {
            binds.append(bind(address, what: "metrics (GET \(MetricsHTTPHandler.path))") { [self] channel in
                try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(node: self))
            })
        }
        if !config.metricsListen.isEmpty {
            metricsLoopProbe = LoopLagProbe(on: eventLoop, period: .milliseconds(10),
                                            keepRunning: { [unowned self] in Clocks.monotonic() < loopWatchedUntil },
                                            observe: { [metrics] in metrics.observeLoopLag(nanoseconds: $0) }, report: { _ in })
        }
        binds.append(ControlServer.start(node: self).assumeIsolated().map { [self] channel in
            channels.append(channel)
        }.nonisolated())
        for peer in peers { peer.startDialing() }
        startRegistry()
        scheduleTrafficSample()
        return EventLoopFuture.andAllSucceed(binds, on: eventLoop)
    }

    /// Creates and configures the TUN interface: addresses, MTU, up, a route for every
    /// peer's allowed_ips (all through rtnetlink); its planes start with the whole route table.
    private func startTun() throws {
        guard let tunConfig = config.tun else { return }
        // An HA gateway installs its routes only while active.
        let routes = config.ha == nil ? peers.flatMap(\.config.allowedIPs) : []
        let tun = try TunService(tunConfig, routes: routes, maxRecordPayload: config.maxRecordPayload,
                                 stripes: peerFeatures.packetStriping, loopPackets: LoopPackets(node: self),
                                 currentPeers: { [unowned self] in (peers, config.peers) }, eventLoop: eventLoop, logger: logger)
        self.tun = tun
        tun.publishRoutesNow()
        tun.startPlanes()
    }

    private func bind(_ address: HostPort, what: String, initialize: @escaping (Channel) throws -> Void) -> EventLoopFuture<Void> {
        TCPListener.bind(address, on: eventLoop, initialize: initialize)
            .assumeIsolated()
            .map { [self] channel in
                logger.info("listening: \(what) on \(address)")
                channels.append(channel)
            }
            .nonisolated()
    }

    /// Link sockets: no Nagle (we batch ourselves), and the kernel gives up on unacknowledged
    /// data after the dead-link timeout instead of retransmitting for 15 minutes.
    static func configureLinkChannel(_ channel: Channel, timeout: Duration) throws {
        try channel.syncOptions?.setOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        let userTimeout = ChannelOptions.Types.SocketOption(level: IPPROTO_TCP, name: TCP_USER_TIMEOUT)
        try channel.syncOptions?.setOption(userTimeout, value: SocketOptionValue(timeout.nanoseconds / 1_000_000))
        try channel.syncOptions?.setOption(
            ChannelOptions.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
    }

    /// How long a dial waits for TCP's answer.
    static let connectTimeout: Duration = .seconds(5)

    func clientBootstrap() -> ClientBootstrap {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(Self.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
    }

    /// How long shutdown waits for links to write their go-away before closing them anyway.
    static let shutdownFlushLimit: TimeAmount = .seconds(1)

    func shutdown() -> EventLoopFuture<Void> {
        logger.info("shutting down")
        registryServer?.stop()
        // Ports are released first (a standby takes over in one round trip, not one lease),
        // and the sessions go once the registry answered (or after `shutdownFlushLimit`).
        return releasePorts().assumeIsolated().flatMap { [self] in stopServices() }.nonisolated()
    }

    /// The HA ports stepped down and their registry entries released; done when the registry
    /// answered, at most `shutdownFlushLimit` after.
    private func releasePorts() -> EventLoopFuture<Void> {
        guard let ha else { return eventLoop.makeSucceededVoidFuture() }
        let released = eventLoop.makePromise(of: Void.self)
        let started = Clocks.monotonic()
        // Whichever comes first logs and goes on; the other finds it done.
        var done = false
        let limit = eventLoop.assumeIsolated().scheduleTask(in: Self.shutdownFlushLimit) { [logger] in
            done = true
            logger.warning("registry: no answer to the release of our ports within \(Self.shutdownFlushLimit.nanoseconds / 1_000_000) ms; going on")
            released.succeed()
        }
        ha.stop().assumeIsolated().whenComplete { [logger] _ in
            guard !done else { return }
            done = true
            limit.cancel()
            logger.info("registry: our ports released in \((Clocks.monotonic() - started) / 1_000_000) ms")
            released.succeed()
        }
        return released.futureResult
    }

    /// Everything but the HA role: the peers' sessions say go-away, listeners close, each link
    /// once it wrote what it was given, then the TUN.
    private func stopServices() -> EventLoopFuture<Void> {
        for peer in peers { peer.shutdown() }
        linkListeners.stop()
        metricsLoopProbe?.cancel()
        metricsLoopProbe = nil
        trafficSample?.cancel()
        trafficSample = nil
        let closes = channels.map { $0.close().recover { _ in } } + forwards.closeAll()
        channels.removeAll()
        let links = closeWhenFlushed(peers.flatMap(\.sessions).flatMap(\.links.values))
        return EventLoopFuture.andAllComplete(closes + [links], on: eventLoop).assumeIsolated().map { [self] in
            // After the links' closes (queued ahead of it).
            tun?.stop()
            tun = nil
        }.nonisolated()
    }

    /// Closes each of `links` once the go-away and resets it was given are written; one whose
    /// peer does not read is closed as it is after `shutdownFlushLimit`. Done when all are.
    func closeWhenFlushed(_ links: [LinkHandler]) -> EventLoopFuture<Void> {
        let flushed = links.map { $0.closeWhenFlushed() }
        let limit = eventLoop.assumeIsolated().scheduleTask(in: Self.shutdownFlushLimit) {
            for link in links { link.close() }
        }
        return EventLoopFuture.andAllComplete(flushed, on: eventLoop).always { _ in limit.cancel() }
    }

    // MARK: Links and streams

    /// A responder link passed its first record: join it to its peer's session, within the
    /// peer's caps (`links_per_peer`, `sessions_per_peer`). Nil: the link was closed.
    func attachResponderLink(_ link: LinkHandler, hello: LinkHello, keyID: KeyID) -> SessionRuntime? {
        guard let peer = peersByKeyID[keyID] else {
            link.fail("no peer has key \(keyID) any more (a reload removed it)", deliberate: true)
            return nil
        }
        guard serves(peer.config) else {
            // Deny by default: the HA port of this peer is another gateway's now.
            let port = peer.config.haPort.map { "HA port '\($0)', which this gateway is not active for" } ?? "no HA port this gateway is active for"
            link.fail("peer '\(peer.config.name)' is served by \(port)", level: .info, deliberate: true)
            return nil
        }
        let limits = config.limits
        let links = peer.sessions.reduce(0) { $0 + $1.links.count }
        guard links < limits.linksPerPeer else {
            limitHit(.linksPerPeer, "peer '\(peer.config.name)' already has \(links) links up; closing a new one", logger: link.logger)
            link.close()
            return nil
        }
        if peer.incoming[hello.sessionID] == nil {
            // An initiator keeps one session per peer: a new session id means it restarted, and
            // its sessions without links can never resume. End them now rather than hold their
            // streams (and the connections to their targets) for the linger time.
            for stale in peer.incoming.values where stale.links.isEmpty {
                stale.logger.info("the peer started a new session (it restarted?); ending this one, which has no links")
                peer.endSession(stale)
            }
        }
        if peer.incoming[hello.sessionID] == nil, peer.incoming.count >= limits.sessionsPerPeer {
            // A restarted peer starts a new session while its old one lingers: the oldest
            // without links makes room; if all have links, the new session is refused.
            guard let idle = peer.incoming.values.filter({ $0.links.isEmpty }).min(by: { $0.createdAt < $1.createdAt }) else {
                limitHit(.sessionsPerPeer, "peer '\(peer.config.name)' has \(peer.incoming.count) sessions with links; refusing a link for another", logger: link.logger)
                link.close()
                return nil
            }
            limitHit(.sessionsPerPeer, "peer '\(peer.config.name)' has \(peer.incoming.count) sessions; ending its oldest one without links", level: .info, logger: idle.logger)
            peer.endSession(idle)
        }
        let session = peer.incomingSession(id: hello.sessionID)
        session.attach(link)
        return session
    }

    /// The peer opened a stream: connect to its target if this peer may reach it.
    func acceptStream(_ id: UInt32, target: String, in session: SessionRuntime) {
        let peer = session.peer
        if target == RegistryStream.target {
            guard let registryServer else {
                logger.warning("peer '\(peer.config.name)' asked for the registry: this node does not serve one (byst registry serve)")
                return session.reset(id, code: .targetNotAllowed)
            }
            return registryServer.accept(id, in: session)
        }
        guard case .success(let address) = HostPort.parse(target), peer.config.allows(host: address.host, port: address.port) else {
            logger.warning("peer '\(peer.config.name)' asked for target \(target): not in its allow_targets; refused")
            session.reset(id, code: .targetNotAllowed)
            return
        }
        forwards.connect(id, to: address, target: target, in: session, bootstrap: clientBootstrap())
    }
}

/// Whether any peer of a config compresses, or stripes packets.
struct PeerFeatures {
    let compression: Bool
    let packetStriping: Bool

    init(_ config: NodeConfig) {
        compression = config.peers.contains { $0.compression != .off }
        packetStriping = config.peers.contains { $0.packetStriping }
    }
}
