import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// `byst status --json` of real running nodes keeps its exact schema: a field removed,
/// renamed or retyped fails here (scripts and docs/OPERATIONS.md "Status" depend on them).
/// Three nodes produce nearly every field: a registry (`registry_server`), an HA gateway
/// (`registry`, `ha`) and a branch whose first dials fail (`last_error`, while failing and
/// after), with compression on. Not produced in process: `tun` (needs a TUN interface; the
/// E2E TUN tests read it), `peers[].proxy` (an HTTP proxy) and `peers[].last_link_loss` (a
/// link lost: `IntegrationTests.aLinkWhoseUploadsStopIsClosedByThePeerSayingWhy`) — see
/// `notProducedHere`.
@Suite(.serialized) struct StatusSchemaTests {
    let capture = LogCapture()

    static let link = "peers[].sessions[].links[]"
    static let expected: Set<String> = [
        "node: string", "uptime_seconds: number", "handshake_failures: number", "peers: array", "peers[]: object",
        "peers[].name: string", "peers[].endpoint: string", "peers[].configured_links: number", "peers[].reconnects: number",
        "peers[].latest_handshake: string", "peers[].latest_handshake_seconds_ago: number", "peers[].links_up: number",
        "peers[].received_bytes: number", "peers[].sent_bytes: number",
        "peers[].received_bytes_per_second: number", "peers[].sent_bytes_per_second: number", "peers[].rate_seconds: number",
        "peers[].last_error: object", "peers[].last_error.cause: string", "peers[].last_error.at: string",
        "peers[].last_error.seconds_ago: number", "peers[].last_error.attempts: number", "peers[].last_error.failing: bool",
        "peers[].last_error.failing_since: string", "peers[].last_error.failing_seconds: number",
        "peers[].sessions: array", "peers[].sessions[]: object", "peers[].sessions[].id: string",
        "peers[].sessions[].role: string", "peers[].sessions[].state: string", "peers[].sessions[].streams: number",
        "peers[].sessions[].links: array", "\(link): object", "\(link).id: number", "\(link).index: number",
        "\(link).remote: string", "\(link).transport: string", "\(link).uplink: string", "\(link).state: string", "\(link).rtt_ms: number",
        "\(link).bytes_in: number", "\(link).bytes_out: number", "\(link).key_id: string", "\(link).streams: number",
        "\(link).compression: string", "\(link).records_compressed: number", "\(link).records_uncompressed: number",
        "\(link).compression_attempts: number", "\(link).compression_ratio: number", "\(link).records_decompressed: number",
        "\(link).handshake_seconds_ago: number", "\(link).sequenced_packets: bool",
        "registry: object", "registry.service: string", "registry.connected: bool", "registry.lease_valid_ms: number",
        "ha: object", "ha.ports: array", "ha.ports[]: object", "ha.ports[].port: string", "ha.ports[].preferred: bool",
        "ha.ports[].role: string", "ha.ports[].owner: string", "ha.ports[].transitions: number", "ha.ports[].recent: array",
        "ha.ports[].recent[]: object", "ha.ports[].recent[].role: string", "ha.ports[].recent[].at: string",
        "ha.ports[].recent[].reason: string",
        "registry_server: object", "registry_server.clients: number", "registry_server.ports: number",
        "registry_server.requests: number", "registry_server.denied: number",
        "summary: object", "summary.peers: number", "summary.peers_up: number", "summary.links: number",
        "summary.sessions: number", "summary.streams: number", "summary.received_bytes: number", "summary.sent_bytes: number",
        "summary.failing_peers: number", "summary.failing: array", "summary.failing[]: string",
    ]
    static let notProducedHere: Set<String> = [
        "peers[].proxy: string",
        "peers[].last_link_loss: object", "peers[].last_link_loss.index: number", "peers[].last_link_loss.transport: string",
        "peers[].last_link_loss.cause: string", "peers[].last_link_loss.at: string",
        "peers[].last_link_loss.seconds_ago: number", "peers[].last_link_loss.losses: number",
        "tun: object", "tun.name: string", "tun.counters: object", "tun.dropped_queue_full: number",
        "tun.dropped_loop_batches: number", "tun.data_plane_links: number", "tun.plane_links: array", "tun.plane_links[]: number",
    ] // tun.counters.* are TunCounters' stored properties (TunCounters.swift), checked below by encoding.

    func status(_ dir: String, _ name: String) throws -> String {
        let run = try byst(["status", "--json", "--socket", "\(dir)/\(name).sock"])
        #expect(run.status == 0, "\(run.stderr)")
        return run.stdout
    }

    @Test func theJSONOfRunningNodesHasExactlyTheDocumentedFields() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let dir = bed.dir
        let registryKey = try PreSharedKey.generate()
        let registryKeys = try TestCluster.keyStore(dir, "registry", [("hub", registryKey)])
        // The bed's hub store (it has "branch") gets the registry's key too.
        let hubKeys = try TestCluster.keyStore(dir, "hub", [("registry", registryKey)])
        let (hubPort, registryPort, forwardPort) = (try BlockingSocket.freePort(), try BlockingSocket.freePort(), try BlockingSocket.freePort())

        // The branch first: nothing listens yet, so its dials fail (last_error while failing).
        let branch = try await TestCluster.start("""
            [node]
            name = "branch"
            \(TestCluster.nodeFiles("branch", dir: dir))
            [[peer]]
            name = "hub"
            key = "hub"
            endpoint = "byst://127.0.0.1:\(hubPort)"
            uplinks = [{ name = "lo2", bind = "127.0.0.2", links = 2 }]
            compression = "streams"
            [[forward]]
            listen = "127.0.0.1:\(forwardPort)"
            peer = "hub"
            target = "127.0.0.1:\(bed.digest.port)"
            """, directory: dir, name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 5) { try await branch.node.status().peers.first?.last_error != nil })
        let failing = try status(dir, "branch")

        let registry = try await TestCluster.start("""
            [node]
            name = "registry"
            listen = ["127.0.0.1:\(registryPort)"]
            \(TestCluster.nodeFiles("registry", dir: dir))
            [[peer]]
            name = "hub"
            key = "hub"
            ports = ["hq"]
            """, directory: dir, name: "registry", keys: registryKeys, capture: capture, registryGrace: .zero)
        let hub = try await TestCluster.start("""
            [node]
            name = "hub"
            listen = ["127.0.0.1:\(hubPort)"]
            registry = "peer:registry"
            registry_lease = "5s"
            \(TestCluster.nodeFiles("hub", dir: dir))
            [ha]
            port = "hq"
            advertise = ["byst://127.0.0.1:\(hubPort)"]
            [[peer]]
            name = "registry"
            key = "registry"
            endpoint = "byst://127.0.0.1:\(registryPort)"
            links = 1
            [[peer]]
            name = "branch"
            key = "branch"
            allow_targets = ["127.0.0.1:\(bed.digest.port)"]
            compression = "streams"
            """, directory: dir, name: "hub", keys: hubKeys, capture: capture)
        let up = try await TestCluster.waitUntil(seconds: 15) {
            let links = try await branch.node.status().peers.first?.links_up
            let recent = try await hub.node.status().ha?.ports.first?.recent
            return links == 2 && recent?.isEmpty == false
        }
        #expect(up, "\(capture.lines.withLock { $0.suffix(12).joined(separator: "\n") })")
        // Text compresses, and gives the peers bytes to rate (sampled once a second).
        let (sent, received) = try await onThread {
            try sendGenerated(port: forwardPort, count: 4 << 20) { offset, buffer in
                for index in buffer.indices { buffer[index] = UInt8(ascii: "a") + UInt8((offset + index) % 26) }
            }
        }
        #expect(sent == received)
        try await Task.sleep(for: .milliseconds(2200))

        let documents = [failing, try status(dir, "branch"), try status(dir, "hub"), try status(dir, "registry")]
        let produced = try documents.reduce(into: Set<String>()) { $0.formUnion(try JSONShape.paths(of: $1)) }
        #expect(produced.subtracting(Self.expected).sorted() == [], "fields not in the schema (new or renamed: add them here and to docs/OPERATIONS.md)")
        #expect(Self.expected.subtracting(produced).sorted() == [], "fields of the schema missing from real nodes' JSON")

        // What the branch says about the hub, now that the links are up and data went through.
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(documents[1].utf8))
        let peer = try #require(report.peers.first)
        #expect(peer.last_error?.failing == false && peer.last_error?.failing_since == nil)
        #expect((peer.latest_handshake_seconds_ago ?? 99) < 15)
        #expect((peer.sent_bytes ?? 0) > 0 && (peer.received_bytes ?? 0) > 0)
        #expect((peer.sent_bytes_per_second ?? 0) > 0, "a rate over the last seconds: \(peer)")
        let failingReport = try JSONDecoder().decode(StatusReport.self, from: Data(failing.utf8))
        #expect(failingReport.peers.first?.last_error?.failing == true)

        // The human view says what each figure is.
        let text = try byst(["status", "--socket", "\(dir)/branch.sock"]).stdout
        for label in ["latest handshake: ", "transfer: ", "rate (last ", "last error: ", "link RTT (ping frame) ", "  zstd streams "] {
            #expect(text.contains(label), "no '\(label)' in:\n\(text)")
        }
        let hubText = try byst(["status", "--socket", "\(dir)/hub.sock"]).stdout
        #expect(hubText.contains("ha port hq: active, owner hub"), "\(hubText)")

        // A big hub's views: the totals only, or one peer; an unknown peer is a clear error.
        let summary = try JSONDecoder().decode(StatusReport.self, from: Data(try byst(["status", "--json", "--summary", "--socket", "\(dir)/hub.sock"]).stdout.utf8))
        #expect(summary.peers.isEmpty)
        let hubFull = try JSONDecoder().decode(StatusReport.self, from: Data(documents[2].utf8))
        #expect(summary.summary?.peers == hubFull.peers.count && summary.summary?.links == 3, "\(String(describing: summary.summary))")
        #expect(summary.summary?.peers_up == hubFull.peers.filter { ($0.links_up ?? 0) > 0 }.count)
        #expect(failingReport.summary?.failing_peers == 1 && failingReport.summary?.failing == [peer.name])
        let summaryText = try byst(["status", "--summary", "--socket", "\(dir)/hub.sock"]).stdout
        #expect(summaryText.contains("  peers: \(hubFull.peers.count) configured, ") && !summaryText.contains("\npeer "), "\(summaryText)")
        let onePeer = try JSONDecoder().decode(StatusReport.self, from: Data(try byst(["status", "--json", "--peer", peer.name, "--socket", "\(dir)/branch.sock"]).stdout.utf8))
        #expect(onePeer.peers.map(\.name) == [peer.name])
        let unknown = try byst(["status", "--peer", "nobody", "--socket", "\(dir)/hub.sock"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no peer named 'nobody'"), "\(unknown.stderr)")

        // Found by their configs (as byst@NAME's /etc/byst/NAME.toml), all three running.
        let found = StatusTarget.candidates(configDirectory: dir, runDirectory: dir).filter { ControlClient.isListening($0.socket) }
        #expect(found.map(\.name) == ["branch", "hub", "registry"])
        #expect(try StatusTarget.named("hub", configDirectory: dir, runDirectory: dir).socket == "\(dir)/hub.sock")
        // With several running, each gets a line: how to name it, its socket, a summary.
        let line = StatusCommand.describe(found[1])
        #expect(line.hasPrefix("  hub -n hub  \(dir)/hub.sock  up ") && line.hasSuffix(", 2 peers, 3 links up"), "\(line)")

        for node in [branch, hub, registry] { try await node.node.shutdown() }
    }

    /// `tun`, which in-process nodes do not have, a proxy and a lost link: the encoder's keys
    /// must be the schema's.
    @Test func theTunFieldsAreTheSchemasToo() throws {
        let tun = StatusReport.Tun(name: "byst0", counters: TunCounters(), dropped_queue_full: 0, dropped_loop_batches: 0,
                                   data_plane_links: 1, plane_links: [1])
        var report = StatusReport(node: "n", uptime_seconds: 1, handshake_failures: 0, tun: tun, peers: [])
        let loss = StatusReport.LinkLoss(index: 0, transport: "duplex", cause: "c", at: "t", seconds_ago: 1, losses: 1)
        report.peers = [StatusReport.Peer(name: "p", endpoint: "byst://h:1", proxy: "p:3128 (forward)", configured_links: 1,
                                          reconnects: 0, last_link_loss: loss, sessions: [])]
        let paths = try JSONShape.paths(of: String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
        let counters = Set(["packets_from_tun", "packets_to_tun", "packets_to_other_planes", "dropped_no_route", "dropped_no_session",
                            "dropped_spoofed_source", "dropped_malformed", "dropped_tun_write", "dropped_link_scoped",
                            "super_packets_sent_whole", "super_packets_segmented", "super_packets_received",
                            "packets_striped", "packets_reordered", "packets_late", "sequence_gaps_skipped", "reorder_overflows"].map { "tun.counters.\($0): number" })
        let tunAndProxy = paths.filter { $0.hasPrefix("tun") || $0.hasPrefix("peers[].proxy") || $0.hasPrefix("peers[].last_link_loss") }
        #expect(tunAndProxy == Self.notProducedHere.union(counters))
    }
}
