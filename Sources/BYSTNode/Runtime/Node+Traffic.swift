// Once a second: each peer's byte counters into its TrafficWindow, so `byst status` shows
// current rates at once (docs/OPERATIONS.md, "Status"). The links already wake the loop
// every second for keepalives, so this timer costs no extra wake-ups of an idle node. A peer
// without sessions is skipped once its window shows no traffic (its rate stays 0 without
// samples), or if it never had one: a hub with thousands of configured branches walks only
// the connected ones.
import BYSTProto
import NIOCore

extension Node {
    static let trafficSampleInterval: TimeAmount = .seconds(1)

    func scheduleTrafficSample() {
        trafficSample = eventLoop.assumeIsolated().scheduleTask(in: Self.trafficSampleInterval) { [self] in
            let now = Clocks.monotonic()
            for peer in peers where !peer.sessions.isEmpty || !(peer.traffic.samples.isEmpty || peer.traffic.isFlat) {
                peer.sampleTraffic(now: now)
            }
            scheduleTrafficSample()
        }
    }
}

extension PeerRuntime {
    /// Wire bytes of all the peer's links since the node started, the data plane's included.
    func totalBytes() -> (received: UInt64, sent: UInt64) {
        for session in sessions { for link in session.links.values { link.foldPlaneCounters() } }
        return node.metrics.existingPeer(named: config.name)?.totalBytes ?? (0, 0)
    }

    func sampleTraffic(now: Nanoseconds) {
        let total = totalBytes()
        traffic.record(.init(at: now, bytesIn: total.received, bytesOut: total.sent))
    }
}
