// Per-uplink health for `[[peer]] uplinks` (docs/OPERATIONS.md, "Metrics"): links up of
// configured, RTT, bytes and reconnects per uplink, so a dying line shows before it is gone.
import BYSTProto
import CoreMetrics
import Prometheus

/// What one uplink of a peer looks like at a scrape.
struct UplinkState {
    var links = 0
    var configuredLinks = 0
    /// Smoothed RTTs of its links up that have one.
    var rtts: [Duration] = []
    /// Wire bytes of its links, closed ones included (monotonic).
    var received: UInt64 = 0
    var sent: UInt64 = 0
    var reconnects = 0
}

/// The series of one uplink; counters advance by what grew since the last scrape.
final class UplinkGauges {
    private let links: CoreMetrics.Gauge
    private let configuredLinks: CoreMetrics.Gauge
    /// Made at the first RTT (no series while no link of the uplink has one).
    private var rtt: CoreMetrics.Gauge?
    private let dimensions: [(String, String)]
    private let factory: PrometheusMetricsFactory
    private let received: CoreMetrics.Counter
    private let sent: CoreMetrics.Counter
    private let reconnects: CoreMetrics.Counter
    private var reported = UplinkState()

    init(peer: String, uplink: String, factory: PrometheusMetricsFactory) {
        let dimensions = [("peer", peer), ("uplink", uplink)]
        self.dimensions = dimensions
        self.factory = factory
        links = CoreMetrics.Gauge(label: MetricName.uplinkLinks.rawValue, dimensions: dimensions, factory: factory)
        configuredLinks = CoreMetrics.Gauge(label: MetricName.uplinkConfiguredLinks.rawValue, dimensions: dimensions, factory: factory)
        received = CoreMetrics.Counter(label: MetricName.uplinkBytesReceived.rawValue, dimensions: dimensions, factory: factory)
        sent = CoreMetrics.Counter(label: MetricName.uplinkBytesSent.rawValue, dimensions: dimensions, factory: factory)
        reconnects = CoreMetrics.Counter(label: MetricName.uplinkReconnects.rawValue, dimensions: dimensions, factory: factory)
    }

    func set(_ state: UplinkState) {
        links.record(state.links)
        configuredLinks.record(state.configuredLinks)
        if !state.rtts.isEmpty {
            let total = state.rtts.reduce(Duration.zero, +)
            let seconds = Double(total.components.seconds) + Double(total.components.attoseconds) / 1e18
            let gauge = rtt ?? CoreMetrics.Gauge(label: MetricName.uplinkRTT.rawValue, dimensions: dimensions, factory: factory)
            rtt = gauge
            gauge.record(seconds / Double(state.rtts.count))
        }
        if state.received > reported.received { received.increment(by: Int64(clamping: state.received - reported.received)) }
        if state.sent > reported.sent { sent.increment(by: Int64(clamping: state.sent - reported.sent)) }
        if state.reconnects > reported.reconnects { reconnects.increment(by: state.reconnects - reported.reconnects) }
        reported = state
    }
}

extension PeerRuntime {
    /// Each uplink's state now: live links from the sessions, closed links' bytes and the
    /// reconnects from the slots.
    func uplinkStates() -> [(name: String, state: UplinkState)] {
        guard !config.uplinks.isEmpty else { return [] }
        var states: [String: UplinkState] = [:]
        for uplink in config.uplinks { states[uplink.name] = UplinkState(configuredLinks: uplink.links) }
        for slot in slots {
            guard let name = slot.uplink?.name else { continue }
            states[name]?.received += slot.closedLinkBytes.received
            states[name]?.sent += slot.closedLinkBytes.sent
            states[name]?.reconnects += slot.reconnects
        }
        for session in sessions {
            let rtts = Dictionary(uniqueKeysWithValues: session.machine.linkStatus.map { ($0.id, $0.rtt) })
            for (id, link) in session.links {
                guard let name = link.slot?.uplink?.name else { continue }
                states[name]?.links += 1
                states[name]?.received += link.wireBytesIn
                states[name]?.sent += link.wireBytesOut
                if let rtt = rtts[id] ?? nil { states[name]?.rtts.append(rtt) }
            }
        }
        return config.uplinks.compactMap { uplink in states[uplink.name].map { (uplink.name, $0) } }
    }
}
