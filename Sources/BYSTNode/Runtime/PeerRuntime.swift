import BYSTProto
import Logging
import NIOCore
import NIOSSL

/// One configured peer: its key, the session we dial (if it has an endpoint) and the
/// sessions it dialed to us, keyed by session id.
final class PeerRuntime {
    let config: PeerConfig
    /// The peer's key and, during a rotation, its successor: links with either are accepted.
    private(set) var key: PreSharedKey
    private(set) var nextKey: PreSharedKey?
    /// During a rotation we dial with the new key, and with the old one after the new one was
    /// refused (the peer does not have it yet), alternating until one works.
    private var dialWithNext = true
    unowned let node: Node
    private(set) var outgoing: SessionRuntime?
    private(set) var incoming: [[UInt8]: SessionRuntime] = [:]
    private(set) var slots: [LinkSlot] = []
    var reconnects = 0
    /// Client TLS for an https:// endpoint.
    let tlsContext: NIOSSLContext?
    /// `http_proxy_credentials_file`, read when the peer is set up.
    let proxyFileCredentials: ProxyCredentials?
    /// What the proxy asked for, shared by the slots' links (ProxyAuthSession), per proxy.
    private var proxyAuthSessions: [String: ProxyAuthSession] = [:]
    /// Auto mode: the HTTP mode that last worked, and what to try while none has.
    var learnedHTTPMode: HTTPMode?
    private var autoCandidate = HTTPMode.duplex
    private var learnedModeFailures = 0
    /// Auto mode: why each mode tried since the last one that worked did not pass, in order,
    /// for the one line that says which mode auto settled on.
    private var autoRejections: [(mode: HTTPMode, cause: DialFailureCause)] = []
    /// Auto mode on duplex: whether the path holds small writes (a corking proxy), judged
    /// against a WebSocket trial link (PeerRuntime+HeldWrites.swift).
    var heldWrites = HeldWritesCheck()
    /// A proxy on the way closed a split connection behind its first answer while a later
    /// POST was written on it (tinyproxy): the peer's split links send one POST at a time from
    /// the start.
    var splitProxyClosesConnections = false
    /// Established links lost, and the latest (`linkLost`).
    private(set) var linkLosses = 0
    private(set) var lastLinkLoss: (index: UInt16, transport: String, cause: String, at: UInt64)?
    /// What failing dials put in the log, and the last failure for `byst status`.
    private(set) var dialFailures = DialFailureLog()
    /// Wall-clock time of the latest completed link handshake with the peer (either side dialing).
    var latestHandshake: UInt64?
    /// Bytes per second over the last seconds, sampled by the node (Node+Traffic.swift).
    var traffic = TrafficWindow()

    /// Why a peer could not be set up: a TLS file or the proxy credentials file.
    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    init(config: PeerConfig, key: PreSharedKey, nextKey: PreSharedKey? = nil, node: Node) throws(SetupFailure) {
        self.config = config
        self.key = key
        self.nextKey = nextKey
        self.node = node
        // A port:NAME peer may be published with an https:// endpoint.
        do throws(TLSSetup.Failure) {
            if config.endpoint?.httpEndpoint?.tls == true || config.endpoint?.portName != nil {
                tlsContext = try TLSSetup.clientContext(config.http, peer: config.name)
            } else {
                tlsContext = nil
            }
        } catch { throw SetupFailure(description: error.description) }
        do throws(ProxyCredentialsFile.Failure) {
            if let file = config.http.proxyCredentialsFile {
                proxyFileCredentials = try ProxyCredentialsFile.read(file)
            } else {
                proxyFileCredentials = nil
            }
        } catch { throw SetupFailure(description: error.description) }
    }

    /// The shared authentication state of `proxy`, with the credentials configured for it.
    func proxyAuth(for proxy: ProxyConfig) -> ProxyAuthSession {
        let key = proxy.address.description
        if let session = proxyAuthSessions[key] { return session }
        let credentials = proxyFileCredentials ?? proxy.username.map { ProxyCredentials(user: $0, password: proxy.password ?? "") }
        let session = ProxyAuthSession(proxy: proxy.address, credentials: credentials)
        proxyAuthSessions[key] = session
        return session
    }

    // MARK: Keys

    var keyIDs: [KeyID] { [key.id] + (nextKey.map { [$0.id] } ?? []) }

    func key(for id: KeyID) -> PreSharedKey? {
        if id == key.id { return key }
        return nextKey?.id == id ? nextKey : nil
    }

    var dialKey: PreSharedKey { dialWithNext ? nextKey ?? key : key }

    /// A dialed link with `keyID` closed before its handshake completed, for `cause`;
    /// `quietly` when auto mode is still probing HTTP modes (it logs its verdict itself).
    func dialFailed(keyID: KeyID?, cause: DialFailureCause, quietly: Bool = false) {
        if let line = dialFailures.failed(cause, now: Clocks.wall(), quietly: quietly) { log(line) }
        node.peerDialFailed(self, cause: cause)
        guard nextKey != nil, keyID == dialKey.id else { return }
        dialWithNext.toggle()
    }

    /// An established link closed for `cause` (not recycled, removed or shut down by us):
    /// kept for `byst status` (`last_link_loss`).
    func linkLost(index: UInt16, transport: String, cause: String) {
        linkLosses += 1
        lastLinkLoss = (index, transport, cause, Clocks.wall())
    }

    /// A dialed link came up.
    func dialSucceeded() {
        if let line = dialFailures.succeeded(now: Clocks.wall()) { log(line) }
    }

    private func log(_ line: DialFailureLog.Line) {
        var logger = node.logger
        logger[metadataKey: "peer"] = "\(config.name)"
        logger.log(level: line.level == .warning ? .warning : .info, "\(line.message)")
    }

    /// A reload brought other key material: links move to it by re-handshaking (recycling),
    /// links on a key no longer configured are closed, the sessions stay.
    func updateKeys(current: PreSharedKey, next: PreSharedKey?) {
        key = current
        nextKey = next
        dialWithNext = true
        for session in sessions {
            for link in session.links.values where link.keyID.map({ self.key(for: $0) == nil }) ?? false {
                link.fail("its key is no longer configured (rotated)", level: .info, deliberate: true)
            }
        }
        for slot in slots { slot.rekey() }
    }

    // MARK: HTTP mode (auto: duplex, then websocket, then split, until one gets through)

    func httpModeForDial() -> HTTPMode {
        config.http.mode == .auto ? learnedHTTPMode ?? autoCandidate : config.http.mode
    }

    /// Auto mode is trying `mode` and has not seen it work or fail: a link in it that gets no
    /// answer soon is failed, so a proxy that holds it does not hold auto forever. Split is the
    /// last resort and gets the full handshake timeout.
    func isProbing(_ mode: HTTPMode) -> Bool {
        guard config.http.mode == .auto else { return false }
        if mode == .websocket, heldWrites.isTrying { return true }
        return learnedHTTPMode == nil && autoCandidate == mode && mode != .split
    }

    /// The order auto tries: duplex costs least, a WebSocket passes proxies that hold request
    /// bodies but know upgrades (and corking ones: an upgraded connection is a plain tunnel),
    /// split passes nearly anything that speaks HTTP.
    static func autoCandidate(after mode: HTTPMode) -> HTTPMode {
        switch mode {
        case .duplex: .websocket
        case .websocket: .split
        case .split, .auto: .duplex
        }
    }

    func httpModeWorked(_ mode: HTTPMode) {
        guard config.http.mode == .auto else { return }
        // The held-writes trial link: its RTT decides, not its coming up.
        if heldWrites.isTrying, mode == .websocket, learnedHTTPMode == .duplex { return }
        if learnedHTTPMode != mode {
            // The one info line of auto's search: where it settled, and why the modes before did not pass.
            let why = autoRejections.filter { $0.mode != mode }.map { rejection in
                if case .transportNotPassing = rejection.cause { return "\(rejection.cause)" }
                return "HTTP \(rejection.mode) mode did not get through: \(rejection.cause)"
            }
            node.logger.info("peer '\(config.name)': HTTP \(mode) mode works; using it\(why.isEmpty ? "" : " (\(why.joined(separator: "; ")))")")
        }
        learnedHTTPMode = mode
        learnedModeFailures = 0
        autoRejections = []
    }

    /// A link in `mode` closed before its handshake completed, for a cause that concerns the
    /// mode. Returns whether auto is still probing (the failure moved it on to a mode it has not
    /// tried yet, or came from a mode it already left), so the failure need not be logged.
    func httpModeFailed(_ mode: HTTPMode, cause: DialFailureCause) -> Bool {
        guard config.http.mode == .auto else { return false }
        if heldWrites.isTrying, mode == .websocket, learnedHTTPMode == .duplex {
            heldWritesTrialEnded(cause: "\(cause)")
            return true
        }
        if learnedHTTPMode == nil {
            // Several links fail together: the first failure of a candidate decides.
            guard mode == autoCandidate else { return autoRejections.contains { $0.mode == mode } }
            let firstRound = !autoRejections.contains { $0.mode == mode }
            if firstRound { autoRejections.append((mode, cause)) }
            autoCandidate = Self.autoCandidate(after: mode)
            node.logger.debug("peer '\(config.name)': HTTP \(mode) mode did not get through (\(cause)); trying \(autoCandidate)")
            // Split is the last resort: when it fails too, auto has nothing left to try quietly.
            return firstRound && mode != .split
        } else {
            // The network may have changed: after repeated failures, probe again.
            learnedModeFailures += 1
            if learnedModeFailures >= 3 {
                learnedHTTPMode = nil
                autoCandidate = .duplex
                learnedModeFailures = 0
                autoRejections = []
                heldWrites.reset()
                splitProxyClosesConnections = false
            }
            return false
        }
    }

    /// A duplex link's uploads stopped reaching the hub (nginx stops passing a request body on
    /// when more is in flight than its connection to the hub takes at once: docs/OPERATIONS.md)
    /// and the hub closed it as dead, saying so. Auto moves on to websocket (then split), as if
    /// duplex had not got through; a fixed duplex mode says so.
    func duplexUploadStalled() {
        let what = "HTTP duplex link stopped carrying uploads (the hub closed it, having received nothing on it "
            + "for its dead-link timeout while its own traffic reached us: a proxy that stops passing the request body on?)"
        guard config.http.mode == .auto else {
            return node.logger.warning("peer '\(config.name)': \(what); http_mode = \"websocket\" or \"split\" avoids it (docs/OPERATIONS.md, nginx)")
        }
        guard learnedHTTPMode == .duplex else { return }
        learnedHTTPMode = nil
        autoCandidate = Self.autoCandidate(after: .duplex)
        learnedModeFailures = 0
        autoRejections = [(.duplex, .other("its uploads stopped reaching the hub"))]
        heldWrites.reset()
        node.logger.info("peer '\(config.name)': \(what); trying HTTP \(autoCandidate) mode")
        for slot in slots { slot.moveToDialMode(reason: "HTTP \(autoCandidate) mode (duplex uploads stalled)") }
    }

    var sessions: [SessionRuntime] { (outgoing.map { [$0] } ?? []) + incoming.values.sorted { $0.createdAt < $1.createdAt } }

    /// `!sessions.isEmpty` without building and sorting `sessions` (the traffic sample asks it
    /// of every configured peer each second).
    var hasSessions: Bool { outgoing != nil || !incoming.isEmpty }

    /// Runs `body` for each session, in no particular order (cheaper than `sessions`).
    func forEachSession(_ body: (SessionRuntime) -> Void) {
        if let outgoing { body(outgoing) }
        for session in incoming.values { body(session) }
    }

    /// Starts dialing `links` links to the endpoint, each slot reconnecting on its own. A
    /// `port:NAME` peer dials once the registry names the port's owner (`follow`).
    func startDialing() {
        guard let endpoint = config.endpoint else { return }
        var sessionID = [UInt8](repeating: 0, count: LinkHello.sessionIDSize)
        for index in sessionID.indices { sessionID[index] = UInt8.random(in: 0...255) }
        outgoing = SessionRuntime(node: node, peer: self, sessionID: sessionID, role: .initiator)
        if endpoint.portName == nil { dial(endpoint) }
    }

    /// Our index in the TUN's routing table (`LoopPackets.peersChanged`), -1 before the first.
    var routeIndex = -1
    /// What the data planes were last told of us (`TunService.publishRoutes`), one entry
    /// per plane; nil before any link of ours came up (no links anywhere).
    var publishedRouterEntries: [PacketRouter.Peer]?

    /// Where our links go now: the configured endpoint, or the HA port owner's.
    private(set) var dialTarget: Endpoint?

    private func dial(_ endpoint: Endpoint) {
        guard let session = outgoing else { return }
        dialTarget = endpoint
        let uplinks = UplinkConfig.perSlot(config.uplinks)
        slots = (0..<config.links).map {
            LinkSlot(peer: self, session: session, index: UInt16($0), endpoint: endpoint, uplink: $0 < uplinks.count ? uplinks[$0] : nil)
        }
        for slot in slots { slot.dial() }
    }

    /// `port:NAME` peers: the port's owner changed. Links move to the first endpoint the new
    /// owner published (the session stays: the new gateway starts a new instance of it, so
    /// streams are reset and packets flow again). With no owner we keep what we have: a
    /// restarted registry knows no owner until the gateway relets its port, and a gateway
    /// that lost its port steps down and closes its links itself. An owner that is not one of
    /// our `gateways` is ignored the same way: whoever took the port at the registry, our
    /// links stay where they are (and wherever we dial, the gateway must prove our PSK).
    func follow(_ owner: PortOwner?) {
        guard config.endpoint?.portName != nil, outgoing != nil else { return }
        if let owner, !config.gateways.contains(owner.node) {
            node.logger.warning("peer '\(config.name)': \(config.endpoint?.description ?? "") is owned by '\(owner.node)', which is not among its gateways (\(config.gateways.joined(separator: ", "))): ignored; links stay \(dialTarget.map { "with \($0)" } ?? "down")")
            return
        }
        if owner == nil, let dialTarget {
            node.logger.info("peer '\(config.name)': \(config.endpoint?.description ?? "") has no owner for now; links stay with \(dialTarget) until another gateway takes it")
            return
        }
        let target = owner.flatMap { HAConfig.firstEndpoint(inInfo: $0.info) }
        guard target != dialTarget else { return }
        let what = owner.map { "'\($0.node)' at \(target?.description ?? "no endpoint we can dial (\($0.info))")" } ?? "nobody (waiting)"
        node.logger.info("peer '\(config.name)': \(config.endpoint?.description ?? "") is now served by \(what)")
        for slot in slots { slot.stop() }
        slots.removeAll()
        dialTarget = nil
        for link in outgoing?.links.values.sorted(by: { $0.id < $1.id }) ?? [] {
            link.fail("HA port moved to another gateway", level: .info, deliberate: true)
        }
        if let target { dial(target) }
    }

    /// The session a new stream to this peer should use: ours if we dial, else the
    /// incoming session with the most links.
    func sessionForNewStream() -> SessionRuntime? {
        if let outgoing { return outgoing }
        return incoming.values.max { ($0.links.count, $0.createdAt) < ($1.links.count, $1.createdAt) }
    }

    /// The responder's session for a confirmed link, created on first sight of its id.
    func incomingSession(id: [UInt8]) -> SessionRuntime {
        if let existing = incoming[id] { return existing }
        let session = SessionRuntime(node: node, peer: self, sessionID: id, role: .responder)
        incoming[id] = session
        session.logger.info("session opened by peer")
        return session
    }

    /// Ends an incoming session at once (to make room under `sessions_per_peer`): its streams
    /// are reset, the peer is told if a link is left.
    func endSession(_ session: SessionRuntime) {
        session.shutdown()
        if incoming[session.sessionID] === session { incoming[session.sessionID] = nil }
    }

    func sessionExpired(_ session: SessionRuntime) {
        if incoming[session.sessionID] === session { incoming[session.sessionID] = nil }
        // Our own session lives as long as we dial: its streams were reset; keep using it.
    }

    /// Go-away and resets are written first; the slots only stop reconnecting, and the node
    /// closes the links after a short grace period so those frames reach the peer.
    func shutdown() {
        for session in sessions { session.shutdown() }
        for slot in slots { slot.stop() }
    }
}
