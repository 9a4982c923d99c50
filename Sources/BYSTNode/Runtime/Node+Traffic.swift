// Once a second: each peer's byte counters into its TrafficWindow, so `byst status` shows
// current rates at once (docs/OPERATIONS.md, "Status"). A peer without sessions is skipped
// once its window shows no traffic (its rate stays 0 without samples), or if it never had
// one: a hub with thousands of configured branches samples only the connected ones, and asks
// the others two cheap questions (`hasSessions`, `isSettled`) without building anything.
import BYSTProto
import NIOCore

extension Node {
    static let trafficSampleInterval: TimeAmount = .seconds(1)

    func scheduleTrafficSample() {
        trafficSample = eventLoop.assumeIsolated().scheduleTask(in: Self.trafficSampleInterval) { [self] in
            let now = Clocks.monotonic()
            for peer in peers where peer.hasSessions || !peer.traffic.isSettled {
                peer.sampleTraffic(now: now)
            }
            scheduleTrafficSample()
        }
    }
}

extension PeerRuntime {
    /// Wire bytes of all the peer's links since the node started, the data plane's included.
    func totalBytes() -> (received: UInt64, sent: UInt64) {
        forEachSession { session in for link in session.links.values { link.foldPlaneCounters() } }
        return node.metrics.existingPeer(named: config.name)?.totalBytes ?? (0, 0)
    }

    func sampleTraffic(now: Nanoseconds) {
        let total = totalBytes()
        traffic.record(.init(at: now, bytesIn: total.received, bytesOut: total.sent))
    }
}
