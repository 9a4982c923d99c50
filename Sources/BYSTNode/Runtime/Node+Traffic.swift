// Once a second: each peer's byte counters into its TrafficWindow, so `byst status` shows
// current rates at once (docs/OPERATIONS.md, "Status"). The links already wake the loop
// every second for keepalives, so this timer costs no extra wake-ups of an idle node.
import BYSTProto
import NIOCore

extension Node {
    static let trafficSampleInterval: TimeAmount = .seconds(1)

    func scheduleTrafficSample() {
        trafficSample = eventLoop.assumeIsolated().scheduleTask(in: Self.trafficSampleInterval) { [self] in
            let now = Clocks.monotonic()
            for peer in peers { peer.sampleTraffic(now: now) }
            scheduleTrafficSample()
        }
    }
}

extension PeerRuntime {
    /// Wire bytes of all the peer's links since the node started, the data plane's included.
    func totalBytes() -> (received: UInt64, sent: UInt64) {
        for session in sessions { for link in session.links.values { link.foldPlaneCounters() } }
        return node.metrics.peer(named: config.name).totalBytes
    }

    func sampleTraffic(now: Nanoseconds) {
        let total = totalBytes()
        traffic.record(.init(at: now, bytesIn: total.received, bytesOut: total.sent))
    }
}
