// A session between two nodes over N links (PROTOCOL.md §5), sans-IO:
//
//   record payload from link L ─▶ receive() ─▶ events (stream opened / data / fin / reset)
//   application ─▶ openStream / send / finish / reset / consumed
//   link L writable ─▶ nextPayload(for: L) ─▶ frames for one record ─▶ seal ─▶ socket
//   timer ─▶ poll(now) ─▶ pings, dead links, linger expiry
//
// Each stream has a home link; a bulk stream may also spread its data over the session's
// other links (striping, SessionMachine+Striping.swift). When a link dies its streams move to
// the least-loaded survivor, and every stream with bytes on it resends everything the peer has
// not acknowledged; the receiver drops what it already has and reorders by offset.
import NIOCore

/// The N:M session state machine.
///
/// **Invariants**
/// - Stream ids are odd when opened by the initiator, even when opened by the responder.
/// - No byte is delivered twice or out of order: a stream delivers only bytes at its
///   `received` offset.
/// - Memory is bounded: each stream's unacknowledged send bytes by `sendBufferLimit`, all
///   streams' together by `sessionSendBufferLimit` (`sessionBuffered` is their sum), what
///   the peer may make us deliver by the stream and session windows, streams by `maxStreams`.
public struct SessionMachine {
    public enum Role: Sendable { case initiator, responder }

    /// The credit a stream opener may use before the first acknowledgement, and the session
    /// credit before the first session acknowledgement (PROTOCOL.md §5.3).
    public static let initialStreamCredit: UInt64 = 256 * 1024
    public static let initialSessionCredit: UInt64 = 4 << 20
    /// Cap on frames waiting for any link (resets, final acks): a peer that provokes
    /// replies faster than it reads them is cut off instead of growing our memory.
    static let maxQueuedControlFrames = 4096

    public let role: Role
    public let config: SessionConfig
    /// `config.deadLinkTimeout` in nanoseconds, worked out once: `nextDeadline` runs after
    /// every pump, and a `Duration`'s nanoseconds take 128-bit arithmetic.
    let deadLinkNanoseconds: Nanoseconds
    /// `config.idleKeepaliveInterval` in nanoseconds.
    let idleKeepaliveNanoseconds: Nanoseconds

    var links: [LinkID: LinkState] = [:]
    /// The state of the link `writePayload` fills a record for, swapped with its entry in
    /// `links` meanwhile (a vacant state stands in there the rest of the time). Swapping
    /// copies nothing — a copy would retain every array in it — and finds the link once.
    var linkAtWork = LinkState(now: 0, keepalive: 0)
    /// The id of `linkAtWork` while `writePayload` runs.
    var linkAtWorkID = LinkID(-1)
    /// The striping scheduler's view of each link (in-flight bytes, rate, RTT).
    var linkFlows: [LinkID: LinkFlow] = [:]
    /// Links that negotiated `sequencedPackets` (PROTOCOL.md §5.4): sequenced packet frames
    /// on any other link are refused like an unknown frame type.
    var sequencedLinks: Set<LinkID> = []
    /// Streams holding enough to be striped (`considerStriping`): every link may serve them.
    var stripeCandidates: [UInt32] = []
    /// The latest time the machine was told (`receive`, `poll`, link changes): what
    /// `writePayload`, which takes no time, stamps sends with.
    var clock: Nanoseconds = 0
    var streams: [UInt32: StreamState] = [:]
    var closed: [UInt32: ClosedStream] = [:]
    var closedOrder: [UInt32] = []
    /// Frames any link may carry (resets, go-away).
    var sharedControl: [Frame] = []
    var acksDue: Set<UInt32> = []
    /// Announce our session window at once: the peer starts from `initialSessionCredit`.
    var sessionAckDue = true
    var nextLocalStreamID: UInt32
    var highestPeerStreamID: UInt32 = 0
    var sessionSendLimit = SessionMachine.initialSessionCredit
    var sessionSentNew: UInt64 = 0
    var sessionReceivedNew: UInt64 = 0
    var sessionConsumed: UInt64 = 0
    var sessionAdvertised: UInt64
    /// Send bytes buffered over all streams (queued or unacknowledged).
    var sessionBuffered = 0
    /// `send` was cut short by `sessionSendBufferLimit`: wake the blocked writers once room frees.
    var sessionSendBlocked = false
    var lingerDeadline: Nanoseconds?
    var pingCounter: UInt64 = 0
    /// Links in id order: a flow hash picks its link by index here.
    var linkOrder: [LinkID] = []
    public internal(set) var packetsDropped: UInt64 = 0
    /// Events for the driver; after `recycleEvents` in the storage of the array it handed back.
    var events: [SessionEvent] = []

    /// Responder: this session state's random identity, announced on every link.
    let instance: UInt64
    /// Initiator: the responder instance our streams belong to.
    var peerInstance: UInt64?

    /// - Parameter instance: responder only — a random value identifying this session state
    ///   (the runtime draws it; the core never reads randomness itself).
    public init(role: Role, config: SessionConfig = .init(), now: Nanoseconds, instance: UInt64 = 0) {
        self.role = role
        self.config = config
        deadLinkNanoseconds = config.deadLinkTimeout.nanoseconds
        idleKeepaliveNanoseconds = config.idleKeepaliveInterval.nanoseconds
        self.instance = instance
        nextLocalStreamID = role == .initiator ? 1 : 2
        sessionAdvertised = Self.initialSessionCredit
        lingerDeadline = now + config.linger.nanoseconds
    }

    // MARK: Links

    /// A link joined the session. `striping`: both hellos offered `LinkFeatures.streamStriping`
    /// (the peer reassembles streams by offset), so striped streams may use it.
    /// `sequencedPackets`: both offered `LinkFeatures.sequencedPackets`, so the peer may send
    /// sequenced packet frames there. `idleKeepalive`: both offered `LinkFeatures.idleKeepalive`,
    /// so the link is kept alive at the idle interval while it carries nothing (§5.5).
    /// `closeReasons`: both offered `LinkFeatures.closeReasons`, so a dead link is closed with
    /// a `linkClosing` frame that says so.
    public mutating func linkUp(_ id: LinkID, now: Nanoseconds, striping: Bool = false, sequencedPackets: Bool = false,
                                idleKeepalive: Bool = false, closeReasons: Bool = false) {
        clock = max(clock, now)
        if sequencedPackets { sequencedLinks.insert(id) } else { sequencedLinks.remove(id) }
        links[id] = LinkState(now: now, keepalive: config.keepaliveInterval.nanoseconds)
        links[id]?.idleKeepalive = idleKeepalive
        links[id]?.closeReasons = closeReasons
        linkFlows[id] = LinkFlow(striping: striping)
        if role == .responder { links[id]?.control.append(.instance(instance)) }
        refreshLinkOrder()
        lingerDeadline = nil
        for streamID in streams.keys where streams[streamID]?.link == nil {
            rewind(streamID, home: id)
            links[id]?.streams.append(streamID)
        }
    }

    /// The link is gone (closed, failed or declared dead): its streams move elsewhere.
    public mutating func linkDown(_ id: LinkID, now: Nanoseconds) {
        guard let state = links.removeValue(forKey: id) else { return }
        sequencedLinks.remove(id)
        clock = max(clock, now)
        refreshLinkOrder()
        packetsDropped += UInt64(state.packets.count)
        sharedControl.append(contentsOf: state.unconfirmed.map(\.frame))
        for streamID in state.streams {
            let target = leastLoadedLink()
            rewind(streamID, home: target)
            if let target { links[target]?.streams.append(streamID) }
        }
        // Striped streams homed elsewhere lose what they had in flight there.
        rewindStripes(lostOn: id)
        linkFlows[id] = nil
        // Acknowledgements taken by the dead link may be lost: announce them all again.
        acksDue.formUnion(streams.keys)
        sessionAckDue = true
        if links.isEmpty { lingerDeadline = now + config.linger.nanoseconds }
    }

    /// Starts retiring a link that is about to be replaced (PROTOCOL.md §5.6): no new packets
    /// or streams go there, its streams move to the others (resending what is unacknowledged),
    /// and once its queued packets are written it carries a `retire` frame and nothing more.
    public mutating func retireLink(_ id: LinkID, now: Nanoseconds) {
        guard var state = links[id], state.retireStarted == nil else { return }
        state.retireStarted = now
        let moving = state.streams
        state.streams.removeAll()
        links[id] = state
        // What striped streams already sent there still arrives (the link writes it before its
        // `retire`); it only takes no more.
        linkFlows[id]?.retiring = true
        refreshLinkOrder()
        for streamID in moving {
            let target = leastLoadedLink()
            rewind(streamID, home: target)
            if let target { links[target]?.streams.append(streamID) }
        }
    }

    /// `retireLink` ran for this link (or the peer's `retire` frame made it run): it takes no
    /// new packets or streams.
    public func isRetiring(_ id: LinkID) -> Bool {
        links[id]?.retireStarted != nil
    }

    /// Both sides have sent `retire` on this link: everything either sent on it has arrived,
    /// so it can be closed without losing anything.
    public func isRetired(_ id: LinkID) -> Bool {
        links[id].map { $0.sentRetire && $0.receivedRetire } ?? false
    }

    /// Packets and new streams use only links that are not retiring.
    mutating func refreshLinkOrder() {
        linkOrder = links.filter { $0.value.retireStarted == nil }.keys.sorted()
    }

    public var linkIDs: [LinkID] { links.keys.sorted() }
    public var hasLinks: Bool { !links.isEmpty }
    public var streamCount: Int { streams.count }
    /// Bytes queued by the application and not yet acknowledged, over all streams.
    public var bufferedSendBytes: Int { streams.values.reduce(0) { $0 + $1.send.buffered } }

    func leastLoadedLink() -> LinkID? {
        links.filter { $0.value.retireStarted == nil }.min { a, b in
            (a.value.streams.count, a.key) < (b.value.streams.count, b.key)
        }?.key
    }

    /// The responder came back with new state (it restarted, or expired the session):
    /// everything tied to the old state is void. Streams are reset, counters start over.
    mutating func restartForPeerInstance(_ value: UInt64) {
        for id in streams.keys.sorted() { events.append(.streamReset(id: id, code: .sessionExpired)) }
        streams.removeAll()
        stripeCandidates.removeAll()
        sessionBuffered = 0
        closed.removeAll()
        closedOrder.removeAll()
        sharedControl.removeAll()
        acksDue.removeAll()
        for id in links.keys { links[id]?.streams.removeAll() }
        nextLocalStreamID = role == .initiator ? 1 : 2
        highestPeerStreamID = 0
        sessionSendLimit = Self.initialSessionCredit
        sessionSentNew = 0
        sessionReceivedNew = 0
        sessionConsumed = 0
        sessionAdvertised = Self.initialSessionCredit
        sessionAckDue = true
        peerInstance = value
    }

    // MARK: Timers

    /// Queues keepalive pings, reports dead links and expires a session left without links.
    public mutating func poll(now: Nanoseconds) -> [SessionEvent] {
        clock = max(clock, now)
        let deadAfter = deadLinkNanoseconds
        for id in links.keys.sorted() {
            guard var link = links[id] else { continue }
            link.settleWrites(now: now, deadLink: deadAfter)
            let dead = link.deadAt(now: now, deadLink: deadAfter, idleKeepalive: idleKeepaliveNanoseconds)
            if now >= dead || link.retireStarted.map({ now >= $0 + deadAfter }) == true {
                // The peer learns why: its writes may be what stopped (a proxy holding them)
                // while ours still reach it.
                if now >= dead, link.closeReasons, !link.control.contains(.linkClosing(.deadLink)) {
                    links[id]?.control.append(.linkClosing(.deadLink))
                }
                events.append(.linkDead(id))
                continue
            }
            if now >= link.nextPing { keepalive(&link, now: now) }
            links[id] = link
        }
        if links.isEmpty, let deadline = lingerDeadline, now >= deadline {
            for id in streams.keys.sorted() { events.append(.streamReset(id: id, code: .sessionExpired)) }
            streams.removeAll()
            stripeCandidates.removeAll()
            sessionBuffered = 0
            lingerDeadline = nil
            events.append(.expired)
        }
        return takeEvents()
    }

    /// Pings `link` when it needs one (PROTOCOL.md §5.5) and sets when to look again. A link
    /// is pinged when nothing arrived on it for `silence` — one keepalive interval for the
    /// initiator, two for the responder, so on an idle link only the initiator's pings cross
    /// and each side handles one record per interval — or when it carried records other than
    /// pings and pongs since its last ping and that ping is an interval old: those need the
    /// pong that confirms them (§5.3), and traffic keeps the RTT sampled.
    private mutating func keepalive(_ link: inout LinkState, now: Nanoseconds) {
        let interval = config.keepaliveInterval.nanoseconds
        let idle = link.isIdle(at: now, deadLink: deadLinkNanoseconds)
        let silence = role == .initiator ? (idle ? idleKeepaliveNanoseconds : interval) : responderSilence(idle: idle)
        // One ping in flight per link: under load a pong can take longer than the
        // interval, and replacing the ping would never let an RTT sample complete.
        if link.outstandingPing == nil,
           now >= link.lastReceived + silence || (link.wroteSincePing && now >= link.lastPingSent + interval) {
            pingCounter += 1
            link.control.append(.ping(pingCounter))
            link.outstandingPing = (pingCounter, now)
            link.lastPingSent = now
            link.wroteSincePing = false
        }
        var next = link.lastReceived + silence
        if link.wroteSincePing { next = min(next, link.lastPingSent + interval) }
        // Waiting for a pong, or a moment already past: look again an interval on.
        link.nextPing = link.outstandingPing != nil || next <= now ? now + interval : next
    }

    /// How long the responder lets a link stay silent before it pings: twice the (idle)
    /// interval, but short enough that its ping can still be answered before the link counts
    /// as dead.
    private func responderSilence(idle: Bool) -> Nanoseconds {
        let interval = config.keepaliveInterval.nanoseconds
        let silentFor = idle ? idleKeepaliveNanoseconds : interval
        let deadAfter = (idle ? idleKeepaliveNanoseconds : 0) + deadLinkNanoseconds
        let roomBeforeDead = deadAfter > interval ? deadAfter - interval : 0
        return min(2 * silentFor, max(silentFor, roomBeforeDead))
    }

    /// When `poll` next has work.
    public var nextDeadline: Nanoseconds? {
        let deadAfter = deadLinkNanoseconds
        var deadline: Nanoseconds?
        for link in links.values {
            // Records written on an idle link since the last poll make `deadAt` a moment already
            // past: `poll` dates them at once, and the dead-link time counts from then.
            let dead = link.deadAt(now: clock, deadLink: deadAfter, idleKeepalive: idleKeepaliveNanoseconds)
            let due = min(link.nextPing, dead, link.retireStarted.map { $0 + deadAfter } ?? .max)
            deadline = min(deadline ?? due, due)
        }
        if links.isEmpty, let linger = lingerDeadline { deadline = min(deadline ?? linger, linger) }
        return deadline
    }

    /// Queues an IP packet on the link its flow hashes to; false if it was dropped (no link,
    /// or that link's queue is full). With `offloadHeader`, `packet` goes after that
    /// virtio-net header as an `offloadPacket` frame (only when the peer offered `gsoPackets`).
    /// The bytes are copied: the caller may reuse its buffer at once.
    @discardableResult
    public mutating func sendPacket(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader? = nil,
                                    flowHash: UInt64) -> Bool {
        guard !linkOrder.isEmpty, packet.count <= Frame.maxPacketSize else {
            packetsDropped += 1
            return false
        }
        let link = linkOrder[Int(flowHash % UInt64(linkOrder.count))]
        // In place: no copy of the link's state, one hash lookup.
        guard let index = links.index(forKey: link) else {
            packetsDropped += 1 // `linkOrder` names only links we have: not expected
            return false
        }
        // One mutating call: reading an entry through `links.values[index]` copies it.
        guard links.values[index].packets.append(packet, offloadHeader: offloadHeader, ifWithin: config.packetQueueBytes) else {
            packetsDropped += 1
            return false
        }
        return true
    }

    /// `sendPacket` for a packet in a `ByteBuffer` (plain `packet` frame).
    @discardableResult
    public mutating func sendPacket(_ packet: ByteBuffer, flowHash: UInt64) -> Bool {
        packet.withUnsafeReadableBytes { sendPacket($0, flowHash: flowHash) }
    }

    mutating func takeEvents() -> [SessionEvent] {
        var taken: [SessionEvent] = []
        swap(&taken, &events)
        return taken
    }

    /// Hands back an event array the driver has finished with, so that its storage collects
    /// the next events (optional: without it each batch of events allocates its own array).
    public mutating func recycleEvents(_ handled: consuming [SessionEvent]) {
        guard events.isEmpty, handled.capacity > events.capacity else { return }
        handled.removeAll(keepingCapacity: true)
        events = handled
    }

    // MARK: Status

    public struct LinkStatus: Sendable {
        public let id: LinkID
        public let rtt: Duration?
        public let streams: Int
        public let payloadBytesIn: UInt64
        public let payloadBytesOut: UInt64
    }

    public var linkStatus: [LinkStatus] {
        links.keys.sorted().compactMap { id in
            links[id].map {
                LinkStatus(id: id, rtt: $0.smoothedRTT.map { .nanoseconds(Int64($0)) }, streams: $0.streams.count,
                           payloadBytesIn: $0.bytesIn, payloadBytesOut: $0.bytesOut)
            }
        }
    }
}

/// Per-link state inside a session.
struct LinkState {
    var lastReceived: Nanoseconds
    var nextPing: Nanoseconds
    var outstandingPing: (value: UInt64, sentAt: Nanoseconds)?
    /// When our last ping on this link was sent, and whether records other than pings and
    /// pongs went out since (they want a ping that confirms them: `keepalive`).
    var lastPingSent: Nanoseconds = 0
    var wroteSincePing = false
    /// Idle keepalive (PROTOCOL.md §5.5) was negotiated on this link.
    var idleKeepalive = false
    /// Close reasons (`linkClosing` frames) were negotiated on this link.
    var closeReasons = false
    /// When a record other than pings, pongs and the instance last crossed the link either
    /// way, and when the link last stopped being idle (the dead-link time counts from there).
    var lastActivity: Nanoseconds
    var activeSince: Nanoseconds
    /// Such records were written since the machine was last told the time (`writePayload`
    /// takes none): `poll` and `receive` date them.
    var wroteRecords = false
    /// Such records were written and no pong confirmed them yet: a link is not idle while
    /// what it was given is unconfirmed, so a link that died idle is found by the busy rule.
    var writesUnconfirmed = false
    /// `writesUnconfirmed` as it was before the records `wroteRecords` stands for.
    var unconfirmedBeforeWrites = false
    var smoothedRTT: Nanoseconds?
    /// Frames that must go on this very link (pings, pongs, the instance, `linkClosing`).
    var control: [Frame] = []
    /// Streams pinned here, in round-robin order.
    var streams: [UInt32] = []
    /// Resets, final acks and go-aways written on this link that the peer has not yet
    /// confirmed (by answering a later ping): they are sent again elsewhere if this link dies.
    var unconfirmed: [(frame: Frame, beforePing: UInt64)] = []
    /// Packets of the flows hashed to this link.
    var packets = PacketQueue()
    var rotation = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    /// Set when the link began retiring (§5.6); it is closed once both `retire` frames
    /// crossed, or declared dead a dead-link timeout later.
    var retireStarted: Nanoseconds?
    var sentRetire = false
    var receivedRetire = false

    init(now: Nanoseconds, keepalive: Nanoseconds) {
        lastReceived = now
        lastPingSent = now
        nextPing = now + keepalive
        lastActivity = now
        activeSince = now
    }

    /// Records other than pings and pongs were written on the link (not yet dated: `wroteRecords`).
    mutating func wroteTraffic(keepaliveInterval: Nanoseconds) {
        if !wroteRecords {
            wroteRecords = true
            unconfirmedBeforeWrites = writesUnconfirmed
        }
        writesUnconfirmed = true
        if !wroteSincePing {
            // Ping within an interval of the last one, not only when the link turns silent.
            wroteSincePing = true
            nextPing = min(nextPing, lastPingSent + keepaliveInterval)
        }
    }

    mutating func recordRTT(_ sample: Nanoseconds) {
        // RFC 6298 smoothing (alpha = 1/8).
        smoothedRTT = smoothedRTT.map { ($0 * 7 + sample) / 8 } ?? sample
    }
}
