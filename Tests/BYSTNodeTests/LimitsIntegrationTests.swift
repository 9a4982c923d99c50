import BYSTProto
import Foundation
import Glibc
import Testing
@testable import BYSTNode

/// The caps of `[limits]` on real nodes over loopback: each one is hit, counted in
/// `byst_limit_hits_total`, logged without flooding the log, and the node keeps serving.
/// 127.0.0.2 stands for a hostile host (all of 127/8 is loopback on Linux).
@Suite(.serialized) struct LimitsIntegrationTests {
    let capture = LogCapture()
    static let stranger: UInt32 = 0x7F00_0002

    func hubConfig(_ dir: String, port: UInt16, targets: [UInt16], limits: String, httpPort: UInt16? = nil) -> String {
        TestCluster.hubConfig(dir, port: port, targets: targets, nodeExtra: httpPort.map { "http_listen = [\"127.0.0.1:\($0)\"]" } ?? "",
                              sections: "[limits]\n\(limits)")
    }

    func metrics(_ node: RunningNode) async throws -> Exposition {
        Exposition(parsing: try await node.withNode { $0.metricsExposition() })
    }

    func hits(_ exposition: Exposition, _ limit: String) -> Double {
        exposition.value("byst_limit_hits_total", ["limit": limit]) ?? 0
    }

    func links(of node: RunningNode) async throws -> Int {
        try await node.status().peers.first?.sessions.reduce(0) { $0 + $1.links.count } ?? 0
    }

    func logLines(containing text: String) -> Int { capture.lines.withLock { $0.filter { $0.contains(text) }.count } }

    /// Whether the node closed `socket` within `seconds` (read returns end of stream or a reset).
    func closedByNode(_ socket: BlockingSocket, within seconds: Int) -> Bool {
        socket.setReceiveTimeout(seconds: seconds)
        var byte = [UInt8](repeating: 0, count: 64)
        do {
            while try byte.withUnsafeMutableBytes({ try socket.read(into: $0) }) > 0 {}
            return true
        } catch let failure as BlockingSocket.Failure {
            return failure.code == ECONNRESET
        } catch {
            return false
        }
    }

    @Test func aFloodingSourceIsRateLimitedWhileAPeerElsewhereConnectsAndMovesData() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            hubConfig(bed.dir, port: hubPort, targets: [bed.digest.port], limits: "handshake_rate = 2\nhandshake_burst = 4"),
            directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        // 300 connections from the stranger, each with a bogus message 1.
        let attempts = 300
        let bogus = LinkWire.magic + [LinkWire.version, 1] + [UInt8](repeating: 0x5A, count: 8) + [0, 48] + [UInt8](repeating: 7, count: 48)
        try await onThread {
            for _ in 0..<attempts {
                guard let socket = try? BlockingSocket.connect(port: hubPort, from: Self.stranger) else { continue }
                _ = try? bogus.withUnsafeBytes { try socket.sendAll($0) }
                socket.close()
            }
        }
        let branch = try await TestCluster.start(
            TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 4, forwards: [(forwardPort, bed.digest.port)]),
            directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 4 })
        let (sent, received) = try await onThread { try sendThroughForward(port: forwardPort, count: 1 << 20, seed: 5) }
        #expect(sent == received)

        #expect(try await TestCluster.waitUntil(seconds: 5) { try await hits(metrics(hub.node), "handshake_rate") >= Double(attempts - 40) })
        let exposition = try await metrics(hub.node)
        let limited = hits(exposition, "handshake_rate")
        #expect(exposition.value("byst_handshake_failures_total", ["reason": "rate_limited"]) == limited)
        // The log saw a burst of lines, not one per connection.
        #expect(logLines(containing: "limit handshake_rate") <= LogLimiter.burst + 5)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func unknownSourcesShareAcceptRateWhileAKnownPeerReconnects() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            hubConfig(bed.dir, port: hubPort, targets: [], limits: "handshake_rate = 0\naccept_rate = 1\naccept_burst = 1"),
            directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        let first = try await TestCluster.start(TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 2), directory: bed.dir,
                                                name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: first.node) == 2 })
        let before = hits(try await metrics(hub.node), "accept_rate")
        // 50 strangers, one connection each from its own address: they share one connection a second.
        try await onThread {
            for host in UInt32(10)..<60 {
                guard let socket = try? BlockingSocket.connect(port: hubPort, from: 0x7F00_0000 | host) else { continue }
                socket.close()
            }
        }
        // The accept thread works through its queue on its own: wait until the count settles.
        #expect(try await TestCluster.waitUntil(seconds: 5) { try await hits(metrics(hub.node), "accept_rate") - before >= 45 })
        var flooded = try await metrics(hub.node)
        for _ in 0..<50 {
            try await Task.sleep(for: .milliseconds(100))
            let next = try await metrics(hub.node)
            if hits(next, "accept_rate") == hits(flooded, "accept_rate") { break }
            flooded = next
        }
        #expect(hits(flooded, "accept_rate") - before >= 45)
        #expect(flooded.value("byst_handshake_failures_total", ["reason": "overloaded"]) ?? 0 >= 45)
        // The branch restarts: its address completed handshakes, so both links get in at once.
        try await first.node.shutdown()
        let again = try await TestCluster.start(TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 2), directory: bed.dir,
                                                name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: again.node) == 2 })
        #expect(hits(try await metrics(hub.node), "accept_rate") == hits(flooded, "accept_rate"))
        try await again.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func pendingHandshakesAreCappedOldestFirstAndPeersStillGetIn() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            hubConfig(bed.dir, port: hubPort, targets: [], limits: "pending_handshakes = 8\nhandshake_rate = 0\nhandshake_timeout = \"20s\""),
            directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        // 20 connections that send nothing: the first 12 are pushed out by the later ones.
        let silent = try await onThread { try (0..<20).map { _ in try BlockingSocket.connect(port: hubPort, from: Self.stranger) } }
        defer { for socket in silent { socket.close() } }
        #expect(try await TestCluster.waitUntil(seconds: 5) {
            try await metrics(hub.node).value("byst_pending_handshakes") == 8
        })
        let first = silent[0]
        let last = silent[19]
        #expect(try await onThread { closedByNode(first, within: 5) })
        #expect(try await TestCluster.waitUntil(seconds: 5) { try await hits(metrics(hub.node), "pending_handshakes") == 12 })
        #expect(try await metrics(hub.node).value("byst_handshake_failures_total", ["reason": "overloaded"]) == 12)
        // A real peer's links still get in (each makes room), and then no longer count as pending.
        let branch = try await TestCluster.start(TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 2), directory: bed.dir,
                                                 name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 2 })
        // A link connection that found the table full pushed out a silent one (the first always
        // does; the second only if it came before the first was up), and left the table once up
        // (the hub settles a link at its first record, just after the branch counts it up: so
        // "eventually"). What stays pending is the silent ones left.
        #expect(try await TestCluster.waitUntil(seconds: 5) {
            let now = try await metrics(hub.node)
            let pushedOut = (now.value("byst_handshake_failures_total", ["reason": "overloaded"]) ?? 0) - 12
            return (1...2).contains(pushedOut) && now.value("byst_pending_handshakes") == 8 - pushedOut
        })
        // The newest silent connection is still open.
        last.setReceiveTimeout(seconds: 1)
        var byte = [UInt8](repeating: 0, count: 1)
        #expect(throws: BlockingSocket.Failure.self) { _ = try byte.withUnsafeMutableBytes { try last.read(into: $0) } }
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func silentAndGarbageConnectionsAreClosedFast() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let httpPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            hubConfig(bed.dir, port: hubPort, targets: [], limits: "handshake_timeout = \"1s\"\nhttp_max_head = 1024", httpPort: httpPort),
            directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        let timings = try await onThread { () throws -> [Double] in
            var timings: [Double] = []
            // Garbage on the raw listener: closed at the first bytes.
            let garbage = try BlockingSocket.connect(port: hubPort)
            defer { garbage.close() }
            var start = Date()
            try garbage.sendText("GET / HTTP/1.0\r\n\r\n")
            timings.append(closedByNode(garbage, within: 5) ? Date().timeIntervalSince(start) : 99)
            // Nothing at all: closed at the handshake timeout.
            let silent = try BlockingSocket.connect(port: hubPort)
            defer { silent.close() }
            start = Date()
            timings.append(closedByNode(silent, within: 5) ? Date().timeIntervalSince(start) : 99)
            // Slowloris on the HTTP listener: half a head, then nothing.
            let slow = try BlockingSocket.connect(port: httpPort)
            defer { slow.close() }
            start = Date()
            try slow.sendText("POST /byst HTTP/1.1\r\nHost: x\r\n")
            timings.append(closedByNode(slow, within: 5) ? Date().timeIntervalSince(start) : 99)
            return timings
        }
        #expect(timings[0] < 0.5, "garbage took \(timings[0]) s")
        #expect(timings[1] > 0.8 && timings[1] < 2.5, "silent took \(timings[1]) s")
        #expect(timings[2] > 0.8 && timings[2] < 2.5, "slowloris took \(timings[2]) s")
        // An oversized head: 431, counted.
        let answer = try await onThread { () throws -> String in
            let socket = try BlockingSocket.connect(port: httpPort)
            defer { socket.close() }
            socket.setReceiveTimeout(seconds: 5)
            try socket.sendText("POST /byst HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Pad: \(String(repeating: "a", count: 100))\r\n", count: 20))
            return String(decoding: try socket.readToEnd(), as: UTF8.self)
        }
        #expect(answer.hasPrefix("HTTP/1.1 431 "), "\(answer.prefix(80))")
        let exposition = try await metrics(hub.node)
        #expect(hits(exposition, "http_max_head") == 1)
        #expect(exposition.value("byst_handshake_failures_total", ["reason": "malformed"]) == 1)
        #expect(exposition.value("byst_handshake_failures_total", ["reason": "timeout"]) == 1)
        try await hub.node.shutdown()
    }

    @Test func linksAndSessionsPerPeerAreCapped() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            hubConfig(bed.dir, port: hubPort, targets: [], limits: "links_per_peer = 3\nsessions_per_peer = 1"),
            directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        // One branch dials 4 links: the hub keeps 3.
        let first = try await TestCluster.start(TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 4), directory: bed.dir,
                                                name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await hits(metrics(hub.node), "links_per_peer") >= 1 })
        #expect(try await links(of: hub.node) == 3)
        // It stops; its session lingers at the hub without links. The same key from another
        // node (a restart, as the hub sees it) ends that session at once: it can never resume.
        try await first.node.shutdown()
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: hub.node) == 0 })
        #expect(try await hub.node.status().peers.first?.sessions.count == 1)
        let second = try await TestCluster.start(TestCluster.branchConfig(bed.dir, name: "branch2", hubPort: hubPort, links: 1),
                                                 directory: bed.dir, name: "branch2", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: second.node) == 1 })
        // The hub logs it as it takes the new session, which may be a moment after branch2
        // sees its link up.
        #expect(try await TestCluster.waitUntil(seconds: 5) {
            capture.contains("the peer started a new session (it restarted?); ending this one, which has no links")
        })
        #expect(hits(try await metrics(hub.node), "sessions_per_peer") == 0)
        #expect(try await hub.node.status().peers.first?.sessions.count == 1)
        // A third session while that one has links: refused.
        let third = try await TestCluster.start(TestCluster.branchConfig(bed.dir, name: "branch3", hubPort: hubPort, links: 1),
                                                directory: bed.dir, name: "branch3", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await hits(metrics(hub.node), "sessions_per_peer") >= 1 })
        #expect(try await links(of: second.node) == 1)
        #expect(try await hub.node.status().peers.first?.sessions.count == 1)
        try await third.node.shutdown()
        try await second.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func streamsPerSessionAreCapped() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            hubConfig(bed.dir, port: hubPort, targets: [bed.digest.port], limits: "streams_per_session = 2"),
            directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 1, forwards: [(forwardPort, bed.digest.port)]),
            directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 1 })
        // Two streams held open (the digest server waits for their end), a third refused by the hub.
        let held = try await onThread { try (0..<2).map { _ in try BlockingSocket.connect(port: forwardPort) } }
        defer { for socket in held { socket.close() } }
        for socket in held { try socket.sendText("hello") }
        #expect(try await TestCluster.waitUntil(seconds: 10) {
            try await metrics(hub.node).value("byst_peer_streams", ["peer": "branch"]) == 2
        })
        let refused = try await onThread { try BlockingSocket.connect(port: forwardPort) }
        defer { refused.close() }
        // The refusal may already have reset it.
        try? refused.sendText("hello")
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await hits(metrics(hub.node), "streams_per_session") == 1 })
        #expect(try await onThread { closedByNode(refused, within: 5) })
        // Once one ends, a new stream gets through.
        held[0].shutdownWrite()
        #expect(try await TestCluster.waitUntil(seconds: 10) {
            try await metrics(hub.node).value("byst_peer_streams", ["peer": "branch"]) ?? 2 < 2
        })
        let (sent, received) = try await onThread { try sendThroughForward(port: forwardPort, count: 1 << 16, seed: 3) }
        #expect(sent == received)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func registryPortsPerClientAreCapped() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let registryPort = try BlockingSocket.freePort()
        let registry = try await TestCluster.start("""
            [node]
            name = "hub"
            listen = ["127.0.0.1:\(registryPort)"]
            \(TestCluster.nodeFiles("hub", dir: bed.dir))
            [limits]
            registry_ports = 1
            [[peer]]
            name = "branch"
            key = "branch"
            ports = ["one", "two"]
            """, directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture, registryGrace: .zero)
        let client = try await TestCluster.start(TestCluster.branchConfig(bed.dir, hubPort: registryPort, links: 1), directory: bed.dir,
                                                 name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: client.node) == 1 })
        let replies = LockedBox<[RegistryMessage]>([])
        try await client.node.withNode { node in
            guard let session = node.peer(named: "hub")?.sessionForNewStream() else { return }
            let stream = RegistryStream(session: session)
            stream.onMessage = { message in replies.withLock { $0.append(message) } }
            guard let id = session.openStream(target: RegistryStream.target, endpoint: stream) else { return }
            stream.id = id
            stream.send(.request(id: 1, .hello(leaseMilliseconds: 5000, relet: [])))
            stream.send(.request(id: 2, .register(port: "one", info: "")))
            stream.send(.request(id: 3, .register(port: "two", info: "")))
        }
        #expect(try await TestCluster.waitUntil(seconds: 5) { replies.withLock { $0.count } >= 3 })
        #expect(replies.withLock { $0.last } == .reply(id: 3, .error(.limit, "more than 1 ports")))
        #expect(hits(try await metrics(registry.node), "registry_ports") == 1)
        #expect(logLines(containing: "limit registry_ports") == 1)
        try await client.node.shutdown()
        try await registry.node.shutdown()
    }

    @Test func sendBuffersOfASessionStopAtSessionBuffer() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let stalled = try StalledServer()
        defer { stalled.stop() }
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(bed.dir, port: hubPort, targets: [stalled.port], limits: ""),
                                              directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        // The branch may buffer 1 MiB per stream but only 4 MiB for all: 6 stalled streams hit it.
        // The hub takes a stream window (its `stream_buffer`, 1 MiB by default) plus what its
        // socket to the target holds (up to the kernel's largest send buffer, 4 MiB) before the
        // branch has to buffer: each client offers 16 MiB, so the branch's buffers fill for
        // windows up to 4 MiB (with 4 MiB and 4 MiB offered, 3 runs in 4 never reached the cap).
        let branch = try await TestCluster.start(
            TestCluster.branchConfig(bed.dir, hubPort: hubPort, links: 1, forwards: [(forwardPort, stalled.port)])
                + "\n[limits]\nstream_buffer = \"1MiB\"\nsession_buffer = \"4MiB\"\n",
            directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 1 })
        let clients = try await onThread { try (0..<6).map { _ in try BlockingSocket.connect(port: forwardPort) } }
        defer { for client in clients { client.close() } }
        for client in clients {
            Thread.detachNewThread {
                let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
                for _ in 0..<16 { if (try? chunk.withUnsafeBytes { try client.sendAll($0) }) == nil { return } }
            }
        }
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await hits(metrics(branch.node), "session_buffer") >= 1 })
        let buffered = try await branch.node.withNode { node in node.peer(named: "hub")?.sessionForNewStream()?.machine.bufferedSendBytes ?? -1 }
        #expect(buffered <= 4 << 20)
        #expect(try await links(of: branch.node) == 1)
        for client in clients { client.shutdownBoth() }
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }
}
