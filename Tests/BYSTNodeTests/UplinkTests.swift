import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// `[[peer]] uplinks`: links dialed through given source addresses and interfaces.
@Suite(.serialized) struct UplinkTests {
    let capture = LogCapture()

    static func peer(_ lines: String) -> String {
        """
        [node]
        name = "branch"
        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "byst://192.0.2.1:7000"
        \(lines)
        """
    }

    @Test func uplinksGiveEachSlotItsWayOut() throws {
        let config = try NodeConfig.parse(Self.peer("""
            uplinks = [{ name = "dsl", bind = "192.0.2.10", links = 2 }, { interface = "wwan0" }, { bind = "2001:db8::5", interface = "eth1", links = 3 }]
            """), file: "b.toml")
        let peer = try #require(config.peers.first)
        #expect(peer.links == 6)
        #expect(peer.uplinks.map(\.name) == ["dsl", "wwan0", "eth1"])
        #expect(peer.uplinks[0].bind == [192, 0, 2, 10] && peer.uplinks[0].interface == nil)
        #expect(peer.uplinks[1].bind == nil && peer.uplinks[1].interface == "wwan0" && peer.uplinks[1].links == 1)
        #expect(peer.uplinks[2].bind?.count == 16)
        #expect(UplinkConfig.perSlot(peer.uplinks).map(\.name) == ["dsl", "dsl", "wwan0", "eth1", "eth1", "eth1"])
        #expect(try NodeConfig.parse(Self.peer(""), file: "b.toml").peers.first?.uplinks == [])
        // `byst check` says which way each link leaves.
        #expect(CheckSummary.lines(config, file: "b.toml", keyCount: nil).contains(
            "    hub key hub: byst://192.0.2.1:7000 ×6 links via uplinks dsl (bind 192.0.2.10, 2 links), wwan0 (interface wwan0, 1 link), eth1 (bind 2001:db8::5, interface eth1, 3 links)"))
    }

    @Test func badUplinksAreRefusedOnTheirLine() {
        let cases: [(String, String)] = [
            ("uplinks = [{ links = 2 }]",
             "b.toml:7: [[peer]] \"hub\" uplinks #1: uplinks must be bind, interface or both in each uplink, got neither"),
            ("uplinks = [{ bind = \"192.0.2.300\" }]",
             "b.toml:7: [[peer]] \"hub\" uplinks #1: bind must be an IPv4 or IPv6 address of this machine, like \"192.0.2.10\", got \"192.0.2.300\""),
            ("uplinks = [{ interface = \"a/b\" }]",
             "b.toml:7: [[peer]] \"hub\" uplinks #1: interface must be an interface name of 1-15 letters, digits, '.', '_' or '-', got \"a/b\""),
            ("uplinks = [{ bind = \"192.0.2.10\", via = \"x\" }]",
             "b.toml:7: [[peer]] \"hub\" uplinks #1: unknown key \"via\" (expected one of: name, bind, interface, links)"),
            ("uplinks = [{ bind = \"192.0.2.10\", links = 0 }]",
             "b.toml:7: [[peer]] \"hub\" uplinks #1: links must be an integer 1…64, got 0"),
            ("uplinks = [{ bind = \"192.0.2.10\", links = 40 }, { interface = \"wwan0\", links = 40 }]",
             "b.toml:7: [[peer]] \"hub\": uplinks must be at most 64 links in all, got 80"),
            ("uplinks = [{ interface = \"wwan0\" }, { name = \"wwan0\", bind = \"192.0.2.10\" }]",
             "b.toml:7: [[peer]] \"hub\": duplicate uplink name \"wwan0\""),
            ("links = 2\nuplinks = [{ interface = \"wwan0\" }]",
             "b.toml:7: [[peer]] \"hub\": links must be not set with uplinks (each uplink sets its own links), got integer 2"),
            ("uplinks = []", "b.toml:7: [[peer]] \"hub\": uplinks must be an array of inline tables like { name = \"dsl\", bind = \"192.0.2.10\", links = 2 } or { interface = \"wwan0\" }, got an empty array"),
            ("uplinks = [\"wwan0\"]", "b.toml:7: [[peer]] \"hub\": uplinks must be an array of inline tables like { name = \"dsl\", bind = \"192.0.2.10\", links = 2 } or { interface = \"wwan0\" }, got an array holding string \"wwan0\""),
        ]
        for (lines, expected) in cases {
            #expect(NodeConfig.parseError(Self.peer(lines), file: "b.toml") == expected, "\(lines)")
        }
        let acceptOnly = "[node]\nname = \"hub\"\n[[peer]]\nname = \"b\"\nkey = \"b\"\nuplinks = [{ interface = \"eth1\" }]"
        #expect(NodeConfig.parseError(acceptOnly, file: "h.toml")
                == "h.toml:6: [[peer]] \"b\": uplinks must be set only with an endpoint (uplinks carry the links we dial), got no endpoint")
    }

    /// Loopback has every 127/8 address: links bound to 127.0.0.2 and 127.0.0.3 reach the hub
    /// from those addresses; an uplink whose interface does not exist fails with that cause
    /// and leaves the others alone.
    @Test func linksLeaveFromTheirUplinksAndAMissingInterfaceFailsAlone() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(bed.dir, port: hubPort, targets: []), directory: bed.dir,
                                              name: "hub", keys: bed.hubKeys, capture: capture)
        let uplinks = #"uplinks = [{ name = "a", bind = "127.0.0.2", links = 2 }, { name = "b", bind = "127.0.0.3" }, { name = "gone", interface = "byst-nosuch0" }]"#
        let branchText = TestCluster.branchConfig(bed.dir, hubPort: Int(hubPort), links: 1).replacingOccurrences(of: "links = 1", with: uplinks)
        let branch = try await TestCluster.start(branchText, directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        func links(_ node: RunningNode) async throws -> [StatusReport.Link] {
            try await node.status().peers.first?.sessions.flatMap(\.links) ?? []
        }
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(hub.node).count == 3 })
        let remotes = try await links(hub.node).map { $0.remote.split(separator: ":").first.map(String.init) ?? "" }.sorted()
        #expect(remotes == ["127.0.0.2", "127.0.0.2", "127.0.0.3"])
        #expect(try await links(branch.node).compactMap(\.uplink).sorted() == ["a", "a", "b"])
        let peer = try #require(try await branch.node.status().peers.first)
        #expect(peer.configured_links == 4)
        #expect(peer.last_error?.cause.contains("uplink gone: bind to interface byst-nosuch0: No such device") == true,
                "\(String(describing: peer.last_error))")
        // Per-uplink health in the metrics: links up of configured, bytes, reconnects, RTT.
        #expect(try await TestCluster.waitUntil(seconds: 5) {
            let metrics = Exposition(parsing: try await branch.node.withNode { $0.metricsExposition() })
            return metrics.value("byst_uplink_rtt_seconds", ["peer": "hub", "uplink": "a"]) != nil
        })
        let metrics = Exposition(parsing: try await branch.node.withNode { $0.metricsExposition() })
        func value(_ name: String, _ uplink: String) -> Double? { metrics.value(name, ["peer": "hub", "uplink": uplink]) }
        #expect(value("byst_uplink_links", "a") == 2 && value("byst_uplink_links", "b") == 1 && value("byst_uplink_links", "gone") == 0)
        #expect(value("byst_uplink_configured_links", "a") == 2 && value("byst_uplink_configured_links", "gone") == 1)
        #expect((value("byst_uplink_sent_bytes_total", "a") ?? 0) > 0 && (value("byst_uplink_received_bytes_total", "b") ?? 0) > 0)
        #expect((value("byst_uplink_reconnects_total", "gone") ?? 0) >= 1 && value("byst_uplink_reconnects_total", "a") == 0)
        #expect(value("byst_uplink_rtt_seconds", "gone") == nil)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }
}
