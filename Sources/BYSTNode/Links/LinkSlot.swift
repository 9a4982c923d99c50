import BYSTProto
import Glibc
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket

/// One of a peer's N dialed links: connects over the peer's transport (raw TCP, HTTP duplex,
/// split or WebSocket, through a proxy or not, TLS or not), and after any failure reconnects with
/// exponential backoff and jitter (100 ms doubling to 10 s, ±20 %), until stopped.
///
/// Recycling: when the link reaches its age or byte limit, a replacement is dialed; once it
/// is up the old link retires (PROTOCOL.md §5.6), so nothing in flight is lost.
final class LinkSlot {
    unowned let peer: PeerRuntime
    unowned let session: SessionRuntime
    let index: UInt16
    let endpoint: Endpoint
    /// The uplink this slot's links leave through (`[[peer]] uplinks`); nil: as routing says.
    let uplink: UplinkConfig?
    /// Wire bytes of this slot's links that have closed, and its reconnects: with the live
    /// links' bytes, the per-uplink metrics (UplinkMetrics.swift).
    private(set) var closedLinkBytes: (received: UInt64, sent: UInt64) = (0, 0)
    private(set) var reconnects = 0
    private var attempts = 0
    private var stopped = false
    private var reconnect: Scheduled<Void>?
    /// The link this slot keeps up, and the one dialed to take over from it.
    private var current: LinkHandler?
    private var replacement: LinkHandler?
    private var recycleTimer: Scheduled<Void>?
    private var probeTimer: Scheduled<Void>?
    /// The HTTP mode each dialed link uses, for auto mode's verdict.
    private var modes: [ObjectIdentifier: HTTPMode] = [:]

    static let initialBackoff: Int64 = 100_000_000
    static let maximumBackoff: Int64 = 10_000_000_000
    /// Auto mode gives duplex (and then websocket) this long before concluding a proxy holds
    /// the request.
    static let autoProbeTimeout: TimeAmount = .seconds(3)
    static let replacementRetry: TimeAmount = .seconds(5)

    init(peer: PeerRuntime, session: SessionRuntime, index: UInt16, endpoint: Endpoint, uplink: UplinkConfig? = nil) {
        self.peer = peer
        self.session = session
        self.index = index
        self.endpoint = endpoint
        self.uplink = uplink
    }

    private var logger: Logger {
        var logger = peer.node.logger
        logger[metadataKey: "peer"] = "\(peer.config.name)"
        logger[metadataKey: "slot"] = "\(index)"
        if let uplink { logger[metadataKey: "uplink"] = "\(uplink.name)" }
        return logger
    }

    func dial() { dial(replacing: false) }

    /// `mode`: the HTTP mode to dial in, instead of the peer's (auto mode's trial of another one).
    private func dial(replacing: Bool, mode: HTTPMode? = nil) {
        guard !stopped else { return }
        switch endpoint {
        case .byst(let address):
            let link = makeLink(binding: [], replacing: replacing)
            link.dialRoute = DialFailureClassifier.Route(address: address, viaProxy: false)
            connect(link, to: address) { channel, descriptor in
                link.channelDescriptor = descriptor
                try channel.pipeline.syncOperations.addHandler(link)
            }
        case .http(let http):
            dialHTTP(HTTPRoute(endpoint: http, proxy: peer.config.http.proxy(for: http)), replacing: replacing, mode: mode ?? peer.httpModeForDial())
        case .port(let name):
            // PeerRuntime resolves port:NAME to the owner's endpoint before making slots.
            logger.error("cannot dial unresolved HA port \(name)")
        }
    }

    private func dialHTTP(_ route: HTTPRoute, replacing: Bool, mode: HTTPMode) {
        let tls = route.endpoint.tls ? peer.tlsContext : nil
        let options = peer.config.http
        let host = route.endpoint.address.host
        func addTLS(_ channel: Channel) throws {
            guard let tls else { return }
            try channel.pipeline.syncOperations.addHandler(TLSSetup.clientHandler(context: tls, options: options, host: host))
        }
        // Through CONNECT, links speak raw BYST in the tunnel, except WebSocket links (asked
        // for by name), whose upgrade goes through it to whatever answers at the other end.
        let proxyAuth = route.proxy.map { peer.proxyAuth(for: $0) }
        let connectTunnel = route.viaConnect ? ProxyConnectHandler(request: route.connectRequest(), auth: proxyAuth) : nil
        // Absolute-URI requests answer the proxy's 407s; in a CONNECT tunnel the hub is spoken to.
        let requestAuth = route.viaForwardProxy ? proxyAuth : nil
        if connectTunnel != nil, peer.config.http.mode != .websocket {
            let link = makeLink(binding: [], replacing: replacing)
            link.transport = "connect"
            link.dialRoute = route.dialRoute
            connect(link, to: route.connectAddress) { channel, _ in
                if let connectTunnel { try channel.pipeline.syncOperations.addHandler(connectTunnel) }
                try addTLS(channel)
                try channel.pipeline.syncOperations.addHandler(link)
            }
            return
        }
        let framing: [ChannelHandler]
        let link: LinkHandler
        var headers = route.requestHeaders()
        switch mode {
        case .split:
            headers.add("Content-Type", "application/octet-stream")
            // Not a secret (proxies see it): it pairs the link's requests and is bound into its handshake.
            let token = Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
            link = makeLink(binding: Array(token.utf8), replacing: replacing)
            let upstream = SplitUpstream(
                route: route, token: token, auth: requestAuth, proxyClosesConnections: peer.splitProxyClosesConnections
            ) { [self] upstream in
                openUpstreamConnection(upstream, addTLS: addTLS)
            }
            upstream.onProxyClosesConnections = { [weak peer] in peer?.splitProxyClosesConnections = true }
            upstream.onFailure = { [weak link, dialRoute = route.dialRoute] error in
                guard let link else { return }
                if !link.wasEstablished, link.dialFailure == nil { link.dialFailure = DialFailureClassifier.cause(of: error, route: dialRoute) }
                link.fail("\(error)")
            }
            upstream.onWritable = { [weak link] in link?.session?.schedulePump() }
            upstream.onResend = { [logger] message in logger.info("split-mode upstream: \(message)") }
            link.writeGate = upstream
            let request = HTTPRequestHead(method: "GET", target: route.requestTarget(query: "t=\(token)"), headers: headers)
            framing = [
                HTTPRequestOpener(request: request, auth: requestAuth, streamsBody: false),
                HTTPClientFraming(requestMethod: request.method, upstream: .split(upstream)),
            ]
        case .websocket:
            link = makeLink(binding: [], replacing: replacing)
            let upgrade = WebSocketClientUpgrade(target: route.requestTarget(), headers: headers)
            framing = [
                HTTPRequestOpener(request: upgrade.request, auth: requestAuth, streamsBody: false),
                upgrade,
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: WebSocketReceiver.maxMessageBytes)),
                WebSocketFrameEncoder(),
                WebSocketLinkStream(role: .client),
            ]
        case .duplex, .auto:
            headers.add("Content-Type", "application/octet-stream")
            link = makeLink(binding: [], replacing: replacing)
            headers.add("Transfer-Encoding", "chunked")
            let request = HTTPRequestHead(method: "POST", target: route.requestTarget(), headers: headers)
            framing = [
                HTTPRequestOpener(request: request, auth: requestAuth, streamsBody: true),
                HTTPClientFraming(requestMethod: request.method, upstream: .chunkedBody),
            ]
        }
        modes[ObjectIdentifier(link)] = mode
        link.transport = mode.rawValue
        link.dialRoute = route.dialRoute
        connect(link, to: route.connectAddress) { channel, _ in
            if let connectTunnel { try channel.pipeline.syncOperations.addHandler(connectTunnel) }
            try addTLS(channel)
            try channel.pipeline.syncOperations.addHandlers(framing + [link])
        }
        if peer.isProbing(mode) {
            probeTimer?.cancel()
            probeTimer = peer.node.eventLoop.assumeIsolated().scheduleTask(in: Self.autoProbeTimeout) { [weak link] in
                guard let link, !link.wasEstablished else { return }
                if link.dialFailure == nil { link.dialFailure = .transportNotPassing(mode: mode.rawValue) }
                link.fail("\(mode) HTTP got no answer within \(Self.autoProbeTimeout) (a proxy holding the request?)")
            }
        }
    }

    private func makeLink(binding: [UInt8], replacing: Bool) -> LinkHandler {
        let node = peer.node
        // `compression = "off"`: not even offered, so neither side compresses (PROTOCOL.md §4.2).
        var features: LinkFeatures = peer.config.compression == .off ? [.streamStriping, .closeReasons]
            : [.compression, .streamStriping, .closeReasons]
        if node.tun?.offloads != nil { features.insert(.gsoPackets) }
        if node.config.keepsIdleLinksCheaply { features.insert(.idleKeepalive) }
        if peer.config.packetStriping, node.reordersPackets { features.insert(.sequencedPackets) }
        let hello = LinkHello(
            timestamp: Clocks.wall(), sessionID: session.sessionID, linkIndex: index, features: features,
            maxRecordPayload: UInt32(node.recordLimits.maxPayload), nodeName: node.config.name)
        let initiator = LinkInitiator(psk: peer.dialKey, hello: hello, limits: node.recordLimits, transportBinding: binding)
        let link = LinkHandler(id: node.nextLinkID(), node: node, initiator: initiator, session: session, slot: self)
        if replacing { replacement = link } else { current = link }
        return link
    }

    /// Resolves and connects; `setUp` fills the new channel's pipeline (it gets the socket's
    /// descriptor too: a plain link writes records to it directly, LinkSocket).
    private func connect(_ link: LinkHandler, to address: HostPort, setUp: @escaping (Channel, Int32) throws -> Void) {
        connectChannel(to: address) { channel, descriptor, connectTime in
            link.connectTime = connectTime
            try setUp(channel, descriptor)
        }.assumeIsolated().whenFailure { [self] error in
            logger.debug("dial \(address) failed: \(error)")
            connectFailed(link, error)
            linkClosed(link)
        }
    }

    /// Resolves, connects the socket ourselves (LinkConnector: through the slot's uplink) and
    /// gives it to NIO; `setUp` fills the new channel's pipeline (and gets how long the TCP
    /// connect took).
    private func connectChannel(
        to address: HostPort, setUp: @escaping (Channel, Int32, Nanoseconds) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let node = peer.node
        let loop = node.eventLoop
        let timeout = node.config.deadLinkTimeout
        let bound = NIOLoopBound(setUp, eventLoop: loop)
        return AddressResolver.resolve(address, on: loop)
            .flatMap { [uplink] resolved in
                let started = Clocks.monotonic()
                return LinkConnector.connect(to: resolved, via: uplink, timeout: Node.connectTimeout, on: loop)
                    .map { ($0, Clocks.monotonic() - started) }
            }
            .assumeIsolated().flatMap { [self] descriptor, connectTime -> EventLoopFuture<Channel> in
                // Stopped while the connect was under way (a reload removed the peer, or shutdown).
                guard !stopped else {
                    Glibc.close(descriptor)
                    return loop.makeFailedFuture(LinkConnector.Failure("dial", ECANCELED))
                }
                return ClientBootstrap(group: loop)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try Node.configureLinkChannel(channel, timeout: timeout)
                            try bound.value(channel, descriptor, connectTime)
                        }
                    }
                    .withConnectedSocket(descriptor)
            }.nonisolated()
    }

    /// A connection for split mode's POSTs: same route, same TLS, its own response reader.
    private func openUpstreamConnection(_ upstream: SplitUpstream, addTLS: @escaping (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        let reader = NIOLoopBound(upstream, eventLoop: peer.node.eventLoop)
        return connectChannel(to: upstream.route.connectAddress) { channel, _, _ in
            try addTLS(channel)
            try channel.pipeline.syncOperations.addHandler(SplitPostResponseHandler(upstream: reader.value))
        }
    }

    /// The connection did not come up (no channel events will say why): classify the error.
    private func connectFailed(_ link: LinkHandler, _ error: any Error) {
        guard link.dialFailure == nil, let route = link.dialRoute else { return }
        link.dialFailure = DialFailureClassifier.cause(of: error, route: route)
    }

    // MARK: Link lifecycle

    func linkEstablished(_ link: LinkHandler) {
        attempts = 0
        peer.dialSucceeded()
        if let mode = modes[ObjectIdentifier(link)] { peer.httpModeWorked(mode) }
        if link === replacement {
            let old = current
            current = link
            replacement = nil
            old?.retire()
        }
        scheduleRecycle()
    }

    func linkClosed(_ link: LinkHandler) {
        closedLinkBytes.received += link.wireBytesIn
        closedLinkBytes.sent += link.wireBytesOut
        let mode = modes.removeValue(forKey: ObjectIdentifier(link))
        if !link.wasEstablished, !stopped {
            let cause = link.dialFailure ?? .other("closed before its handshake completed")
            // A name that does not resolve, a proxy's 407 or the hub refusing the key say
            // nothing about the mode: auto keeps it. A mode auto is still probing is quiet.
            let probing = mode.map { cause.isIndependentOfHTTPMode ? false : peer.httpModeFailed($0, cause: cause) } ?? false
            peer.dialFailed(keyID: link.keyID, cause: cause, quietly: probing)
        } else if let mode, link.wasEstablished {
            peer.httpLinkEnded(mode, peerClosed: link.peerCloseReason)
        }
        if link === current {
            current = nil
            recycleTimer?.cancel()
            if let next = replacement {
                // The replacement being dialed takes over the slot.
                current = next
                replacement = nil
            } else {
                scheduleReconnect()
            }
        } else if link === replacement {
            replacement = nil
            recycleTimer?.cancel()
            recycleTimer = peer.node.eventLoop.assumeIsolated().scheduleTask(in: Self.replacementRetry) { [self] in
                startReplacement(reason: "retrying the replacement")
            }
        }
        // A retiring link closing is the end of its retirement: nothing to do.
    }

    /// Called after each read cycle of `link`: recycle once it carried `recycle.bytes`.
    func checkRecycle(_ link: LinkHandler) {
        guard let limit = peer.config.recycle.bytes, link === current, replacement == nil,
              link.wireBytesIn + link.wireBytesOut >= limit
        else { return }
        startReplacement(reason: "\(link.wireBytesIn + link.wireBytesOut) bytes carried")
    }

    private func scheduleRecycle() {
        recycleTimer?.cancel()
        guard let after = peer.config.recycle.after else { return }
        let jittered = Int64(Double(after.nanoseconds) * Double.random(in: 0.9...1.0))
        recycleTimer = peer.node.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(jittered)) { [self] in
            startReplacement(reason: "age \(after)")
        }
    }

    /// Keys changed: replace the link by one that handshakes with the current dial key.
    func rekey() {
        guard let current, current.keyID != peer.dialKey.id else { return }
        if current.isEstablished {
            startReplacement(reason: "key rotation")
        }
    }

    /// Dials a replacement for the current link (in `mode`, else the peer's); false when
    /// there is nothing to replace or a replacement is already under way.
    @discardableResult
    func startReplacement(reason: String, mode: HTTPMode? = nil) -> Bool {
        guard !stopped, replacement == nil, current?.isEstablished == true else { return false }
        logger.info("recycling link: \(reason)")
        dial(replacing: true, mode: mode)
        return true
    }

    // MARK: Auto HTTP mode

    /// A keepalive RTT sample of one of this slot's links.
    func rttMeasured(_ link: LinkHandler, rtt: Nanoseconds) {
        guard let mode = modes[ObjectIdentifier(link)], let connectTime = link.connectTime else { return }
        peer.httpRTTMeasured(rtt, mode: mode, connectTime: connectTime)
    }

    /// Auto mode settled on another HTTP mode: replace the current link if it runs in another.
    func moveToDialMode(reason: String) {
        guard let current, let mode = modes[ObjectIdentifier(current)], mode != peer.httpModeForDial() else { return }
        startReplacement(reason: reason)
    }

    private func scheduleReconnect() {
        guard !stopped, reconnect == nil else { return }
        peer.reconnects += 1
        reconnects += 1
        session.metrics.reconnects.increment()
        let base = min(Self.initialBackoff << min(attempts, 20), Self.maximumBackoff)
        attempts += 1
        let jittered = Int64(Double(base) * Double.random(in: 0.8...1.2))
        reconnect = peer.node.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(jittered)) { [self] in
            reconnect = nil
            dial()
        }
    }

    /// Stops reconnecting; the link itself is closed by `Node.shutdown` once it wrote its go-away.
    func stop() {
        stopped = true
        reconnect?.cancel()
        recycleTimer?.cancel()
        probeTimer?.cancel()
    }
}
