import Testing
@testable import BYSTNode

/// `metrics_peers` (docs/OPERATIONS.md, "Metrics", Cardinality): the node-wide totals are
/// always there; the per-peer series only when asked for, and the counters behind
/// `byst status` keep counting either way.
@Suite struct MetricsCardinalityTests {
    static let states: [(name: String, state: NodeMetrics.PeerState)] = [
        ("lyon", .init(links: 4, configuredLinks: 4, sessions: 1, streams: 2, compressionRatio: nil)),
        ("nice", .init(links: 0, configuredLinks: 2, sessions: 1, streams: 0, compressionRatio: nil)),
        ("pau", .init(links: 2, configuredLinks: 0, sessions: 2, streams: 0, compressionRatio: nil)),
    ]

    func exposition(perPeer: Bool) -> (Exposition, NodeMetrics) {
        let metrics = NodeMetrics(perPeer: perPeer)
        metrics.peer(named: "lyon").counts.bytesReceived += 1234
        metrics.update(uptimeSeconds: 1, readerBatchesDropped: 0, pendingHandshakes: 0, peers: Self.states)
        return (Exposition(parsing: MetricsExposition.render(metrics.registry)), metrics)
    }

    @Test func nodeWideTotalsAreAlwaysExported() {
        for perPeer in [true, false] {
            let (exposition, _) = exposition(perPeer: perPeer)
            #expect(exposition.problems.isEmpty)
            #expect(exposition.value("byst_peers", [:]) == 3)
            #expect(exposition.value("byst_peers_up", [:]) == 2)  // lyon and pau have links
            #expect(exposition.value("byst_links", [:]) == 6)
            #expect(exposition.value("byst_sessions", [:]) == 4)
        }
    }

    @Test func perPeerSeriesOnlyWhenAskedFor() {
        let (all, _) = exposition(perPeer: true)
        #expect(all.value("byst_peer_links", ["peer": "lyon"]) == 4)
        #expect(all.value("byst_peer_received_bytes_total", ["peer": "lyon"]) == 1234)
        // Series for peers that had a session (lyon) and peers we dial (nice); none for a
        // configured branch that never connected (pau's counters were never made here).
        #expect(Set(all.samples.filter { $0.name.hasPrefix("byst_peer_") }.compactMap { $0.labels["peer"] }) == ["lyon", "nice"])

        let (nodeOnly, metrics) = exposition(perPeer: false)
        #expect(nodeOnly.samples.filter { $0.name.hasPrefix("byst_peer_") }.isEmpty)
        #expect(nodeOnly.samples.allSatisfy { $0.labels["peer"] == nil })
        // What `byst status` reads still counts.
        #expect(metrics.peer(named: "lyon").totalBytes.received == 1234)
    }
}
