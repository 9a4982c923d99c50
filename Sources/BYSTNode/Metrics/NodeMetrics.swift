// The Prometheus metrics of one node (docs/OPERATIONS.md, "Metrics"):
//
//   per record / packet ─▶ PeerMetrics.counts, plain integers (moved into the registry's
//       counters at each scrape)
//   rare events (handshake failures, drops, reconnects) ─▶ counters made at start
//   GET /metrics ─▶ MetricsHTTPHandler ─▶ Node.refreshMetrics() on the event loop: gauges
//       from the node's state (links, streams, sessions) ─▶ registry ─▶ text 0.0.4 on a
//       pool thread (MetricsExposition.render)
import CoreMetrics
import Prometheus

/// One node's metrics: its own `PrometheusCollectorRegistry` and a swift-metrics factory over
/// it, passed explicitly to every metric made. The global `MetricsSystem` is never
/// bootstrapped, so several nodes in one process (the tests) each export only their own.
///
/// **Invariants**
/// - Used on the node's event loop only (the metric objects are thread-safe themselves).
/// - A metric name always has the same type and label names (the registry traps otherwise).
/// - Per-peer counters are made once per peer name and kept for the node's lifetime, so a
///   peer removed and added again by a reload continues its series.
final class NodeMetrics {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    private let handshakeFailures: [HandshakeFailureReason: CoreMetrics.Counter]
    private let limitHits: [ResourceLimit: CoreMetrics.Counter]
    private let pendingHandshakes: CoreMetrics.Gauge
    /// Indexed by `PacketDropReason.rawValue`.
    private let packetDrops: [CoreMetrics.Counter]
    private let readerBatchesDropped: CoreMetrics.Counter
    private var readerBatchesSeen: UInt64 = 0
    private let uptime: CoreMetrics.Gauge
    /// HA role and registry connection: made on first use, so nodes without them export neither.
    /// By HA port ([ha] ports: a handful, from the config).
    private var haActive: [String: CoreMetrics.Gauge] = [:]
    private var haTransitions: [String: [Bool: CoreMetrics.Counter]] = [:]
    private var haLastTransition: [String: CoreMetrics.Gauge] = [:]
    private var registryConnected: CoreMetrics.Gauge?
    private var registryDenials: CoreMetrics.Counter?
    /// Where per-peer counters are made: `factory`, or with `metrics_peers = false` one over a
    /// registry nobody reads (the counters still feed `byst status`).
    private let peerFactory: PrometheusMetricsFactory
    private let perPeer: Bool
    private let nodeGauges: NodeGauges
    private var peers: [String: PeerMetrics] = [:]
    private var peerGauges: [String: PeerGauges] = [:]
    /// By peer, then uplink name.
    private var uplinkGauges: [String: [String: UplinkGauges]] = [:]

    init(perPeer: Bool = true) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[MetricName.rtt.rawValue] = Self.rttBuckets
        factory.durationHistogramBuckets[MetricName.eventLoopLag.rawValue] = Self.loopLagBuckets
        self.registry = registry
        self.factory = factory
        self.perPeer = perPeer
        peerFactory = perPeer ? factory : PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        nodeGauges = NodeGauges(factory: factory)
        var failures: [HandshakeFailureReason: CoreMetrics.Counter] = [:]
        for reason in HandshakeFailureReason.allCases {
            failures[reason] = CoreMetrics.Counter(label: MetricName.handshakeFailures.rawValue,
                                                   dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        handshakeFailures = failures
        var hits: [ResourceLimit: CoreMetrics.Counter] = [:]
        for limit in ResourceLimit.allCases {
            hits[limit] = CoreMetrics.Counter(label: MetricName.limitHits.rawValue, dimensions: [("limit", limit.rawValue)],
                                              factory: factory)
        }
        limitHits = hits
        pendingHandshakes = CoreMetrics.Gauge(label: MetricName.pendingHandshakes.rawValue, factory: factory)
        packetDrops = PacketDropReason.allCases.map { reason in
            CoreMetrics.Counter(label: MetricName.packetsDropped.rawValue, dimensions: [("reason", reason.label)], factory: factory)
        }
        readerBatchesDropped = CoreMetrics.Counter(label: MetricName.tunReaderBatchesDropped.rawValue, factory: factory)
        uptime = CoreMetrics.Gauge(label: MetricName.uptime.rawValue, factory: factory)
        loopLag = CoreMetrics.Timer(label: MetricName.eventLoopLag.rawValue, factory: factory)
    }

    /// A loop that is never held long shows nearly everything under 1 ms; a hub's work must
    /// not hold it 10 ms (a ping through it would show the spike).
    static let loopLagBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
    ]
    private let loopLag: CoreMetrics.Timer

    /// One run of the loop-lag probe, `nanoseconds` late.
    func observeLoopLag(nanoseconds: UInt64) {
        loopLag.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// Keepalive round trips: from loopback (well under 1 ms) to a congested satellite path;
    /// beyond 5 s the link is declared dead anyway (default `dead_link_timeout`).
    static let rttBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5),
    ]

    /// The counters of peer `name`, if it had a session since the node started.
    func existingPeer(named name: String) -> PeerMetrics? { peers[name] }

    /// The counters of peer `name`, made on first use (its first session). Not before: making a
    /// series copies its family's table in swift-prometheus, so making them for 10,000 peers
    /// at once held the event loop for 40 s (scripts/bench-hub.sh).
    func peer(named name: String) -> PeerMetrics {
        if let existing = peers[name] { return existing }
        let made = PeerMetrics(peer: name, factory: peerFactory)
        peers[name] = made
        return made
    }

    func handshakeFailed(_ reason: HandshakeFailureReason) {
        handshakeFailures[reason]?.increment()
    }

    func limitHit(_ limit: ResourceLimit) {
        limitHits[limit]?.increment()
    }

    /// For counting off the event loop (the accept threads): the counter objects are thread-safe.
    func handshakeFailureCounter(_ reason: HandshakeFailureReason) -> CoreMetrics.Counter {
        handshakeFailures[reason] ?? CoreMetrics.Counter(label: MetricName.handshakeFailures.rawValue,
                                                         dimensions: [("reason", reason.rawValue)], factory: factory)
    }

    func limitHitCounter(_ limit: ResourceLimit) -> CoreMetrics.Counter {
        limitHits[limit] ?? CoreMetrics.Counter(label: MetricName.limitHits.rawValue, dimensions: [("limit", limit.rawValue)],
                                                factory: factory)
    }

    func packetDropped(_ reason: PacketDropReason, count: Int = 1) {
        packetDrops[reason.rawValue].increment(by: count)
    }

    /// HA `port` entered `active` or standby at `wallSeconds` (since the epoch).
    func haTransition(port: String, active: Bool, wallSeconds: Double) {
        let counter = haTransitions[port]?[active] ?? CoreMetrics.Counter(
            label: MetricName.haTransitions.rawValue, dimensions: [("port", port), ("role", active ? "active" : "standby")], factory: factory)
        haTransitions[port, default: [:]][active] = counter
        counter.increment()
        let gauge = haActive[port] ?? CoreMetrics.Gauge(label: MetricName.haActive.rawValue, dimensions: [("port", port)], factory: factory)
        haActive[port] = gauge
        gauge.record(active ? 1 : 0)
        let at = haLastTransition[port] ?? CoreMetrics.Gauge(label: MetricName.haLastTransition.rawValue, dimensions: [("port", port)],
                                                             factory: factory)
        haLastTransition[port] = at
        at.record(wallSeconds)
    }

    func registryConnection(up: Bool) {
        let gauge = registryConnected ?? CoreMetrics.Gauge(label: MetricName.registryConnected.rawValue, factory: factory)
        registryConnected = gauge
        gauge.record(up ? 1 : 0)
    }

    func registryDenied() {
        let counter = registryDenials ?? CoreMetrics.Counter(label: MetricName.registryDenied.rawValue, factory: factory)
        registryDenials = counter
        counter.increment()
    }

    // MARK: Scrape time

    /// Scrape-time values of one peer.
    struct PeerState {
        var links: Int
        var configuredLinks: Int
        var sessions: Int
        var streams: Int
        /// Sent record payload bytes after / before compression over the live links, when
        /// any were compressed (nil: nothing to report).
        var compressionRatio: Double?
    }

    /// Sets the gauges for this scrape and moves what the data path counted into the peers'
    /// counters; peers no longer configured lose their gauges.
    func update(uptimeSeconds: Double, readerBatchesDropped total: UInt64, pendingHandshakes pending: Int,
                peers states: [(name: String, state: PeerState)], uplinks: [String: [(name: String, state: UplinkState)]] = [:]) {
        uptime.record(uptimeSeconds)
        pendingHandshakes.record(pending)
        for peerMetrics in peers.values { peerMetrics.flush() }
        if total > readerBatchesSeen {
            readerBatchesDropped.increment(by: total - readerBatchesSeen)
            readerBatchesSeen = total
        }
        nodeGauges.set(peers: states.map(\.state))
        guard perPeer else { return }
        var current: Set<String> = []
        for (name, state) in states where peers[name] != nil || state.configuredLinks > 0 {
            // A peer's gauges come with its counters (its first session), or from the start for
            // a peer we dial; a hub's configured branches that never connected export none.
            current.insert(name)
            let gauges = peerGauges[name] ?? PeerGauges(peer: name, factory: factory)
            peerGauges[name] = gauges
            gauges.set(state)
        }
        for (name, gauges) in peerGauges where !current.contains(name) {
            gauges.destroy()
            peerGauges[name] = nil
        }
        // Uplinks: series made on first sight; an uplink or peer removed by a reload keeps its
        // last values until restart (swift-prometheus cannot unregister a labelled counter).
        for (peer, list) in uplinks {
            for (name, state) in list {
                let gauges = uplinkGauges[peer]?[name] ?? UplinkGauges(peer: peer, uplink: name, factory: factory)
                uplinkGauges[peer, default: [:]][name] = gauges
                gauges.set(state)
            }
        }
    }
}

/// The counters of one peer, shared by its sessions and links: what the data path touches.
///
/// **Invariants**: made once per peer by `NodeMetrics.peer(named:)`; used on the event loop
/// only. The data path adds to `counts`, plain integers in this one object (no atomics, no
/// metric objects to reach per packet); `flush` moves them into the Prometheus counters
/// before the registry is read, so a scrape sees every packet counted before it.
final class PeerMetrics {
    struct Counts {
        /// Wire bytes of the peer's links as TCP carried them (accepted links: once the peer is known).
        var bytesReceived = 0
        var bytesSent = 0
        var recordsReceived = 0
        var recordsSent = 0
        /// IP packets from the peer (before the source check) and to it (queued on a link).
        var packetsReceived = 0
        var packetsSent = 0
    }

    /// Counted since the last `flush`.
    var counts = Counts()
    /// Wire bytes moved into the Prometheus counters by `flush` so far.
    private var flushedBytesReceived: UInt64 = 0
    private var flushedBytesSent: UInt64 = 0
    /// Wire bytes received and sent since the node started (`byst status`; data-plane links
    /// count up to their last `foldPlaneCounters`).
    var totalBytes: (received: UInt64, sent: UInt64) {
        (flushedBytesReceived + UInt64(counts.bytesReceived), flushedBytesSent + UInt64(counts.bytesSent))
    }
    private let bytesReceived: CoreMetrics.Counter
    private let bytesSent: CoreMetrics.Counter
    private let recordsReceived: CoreMetrics.Counter
    private let recordsSent: CoreMetrics.Counter
    private let packetsReceived: CoreMetrics.Counter
    private let packetsSent: CoreMetrics.Counter
    let reconnects: CoreMetrics.Counter
    /// Keepalive round trips, one observation per answered ping.
    let rtt: CoreMetrics.Timer

    init(peer: String, factory: PrometheusMetricsFactory) {
        let labels = [("peer", peer)]
        func counter(_ name: MetricName) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name.rawValue, dimensions: labels, factory: factory)
        }
        bytesReceived = counter(.bytesReceived)
        bytesSent = counter(.bytesSent)
        recordsReceived = counter(.recordsReceived)
        recordsSent = counter(.recordsSent)
        packetsReceived = counter(.packetsReceived)
        packetsSent = counter(.packetsSent)
        reconnects = counter(.reconnects)
        rtt = CoreMetrics.Timer(label: MetricName.rtt.rawValue, dimensions: labels, factory: factory)
    }

    /// Moves `counts` into the Prometheus counters (at every scrape).
    func flush() {
        let pending = counts
        counts = Counts()
        flushedBytesReceived += UInt64(pending.bytesReceived)
        flushedBytesSent += UInt64(pending.bytesSent)
        for (counter, value) in [(bytesReceived, pending.bytesReceived), (bytesSent, pending.bytesSent),
                                 (recordsReceived, pending.recordsReceived), (recordsSent, pending.recordsSent),
                                 (packetsReceived, pending.packetsReceived), (packetsSent, pending.packetsSent)]
        where value > 0 {
            counter.increment(by: value)
        }
    }

    func observeRTT(_ sample: Duration) {
        // Capped at an hour (far beyond any bucket) so the nanoseconds cannot overflow.
        let (seconds, attoseconds) = min(sample, .seconds(3600)).components
        rtt.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// The scrape-time gauges of one peer.
final class PeerGauges {
    private let peer: String
    private let factory: PrometheusMetricsFactory
    private let links: CoreMetrics.Gauge
    private let configuredLinks: CoreMetrics.Gauge
    private let sessions: CoreMetrics.Gauge
    private let streams: CoreMetrics.Gauge
    /// Made once the peer's links report a ratio (no series before anything was compressed).
    private var compressionRatio: CoreMetrics.Gauge?

    init(peer: String, factory: PrometheusMetricsFactory) {
        self.peer = peer
        self.factory = factory
        func gauge(_ name: MetricName) -> CoreMetrics.Gauge {
            CoreMetrics.Gauge(label: name.rawValue, dimensions: [("peer", peer)], factory: factory)
        }
        links = gauge(.links)
        configuredLinks = gauge(.configuredLinks)
        sessions = gauge(.sessions)
        streams = gauge(.streams)
    }

    func set(_ state: NodeMetrics.PeerState) {
        links.record(state.links)
        configuredLinks.record(state.configuredLinks)
        sessions.record(state.sessions)
        streams.record(state.streams)
        if let ratio = state.compressionRatio {
            let gauge = compressionRatio
                ?? CoreMetrics.Gauge(label: MetricName.compressionRatio.rawValue, dimensions: [("peer", peer)], factory: factory)
            compressionRatio = gauge
            gauge.record(ratio)
        }
    }

    func destroy() {
        links.destroy()
        configuredLinks.destroy()
        sessions.destroy()
        streams.destroy()
        compressionRatio?.destroy()
    }
}

/// Node-wide totals over the peers, exported whatever `metrics_peers` says.
private struct NodeGauges {
    let peers: CoreMetrics.Gauge
    let peersUp: CoreMetrics.Gauge
    let links: CoreMetrics.Gauge
    let sessions: CoreMetrics.Gauge

    init(factory: PrometheusMetricsFactory) {
        peers = CoreMetrics.Gauge(label: MetricName.peers.rawValue, factory: factory)
        peersUp = CoreMetrics.Gauge(label: MetricName.peersUp.rawValue, factory: factory)
        links = CoreMetrics.Gauge(label: MetricName.nodeLinks.rawValue, factory: factory)
        sessions = CoreMetrics.Gauge(label: MetricName.nodeSessions.rawValue, factory: factory)
    }

    func set(peers states: [NodeMetrics.PeerState]) {
        peers.record(states.count)
        peersUp.record(states.reduce(0) { $0 + ($1.links > 0 ? 1 : 0) })
        links.record(states.reduce(0) { $0 + $1.links })
        sessions.record(states.reduce(0) { $0 + $1.sessions })
    }
}
