import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// Split mode (PROTOCOL.md §6.3) while strangers flood the hub with upstream POSTs for link
/// tokens that never get a GET: the strangers are refused and closed, and a real split-mode
/// branch still connects and moves SHA-256-checked data. 127.0.0.2 and up stand for hostile
/// hosts (all of 127/8 is loopback on Linux); the branch is 127.0.0.1.
@Suite(.serialized) struct SplitPairingFloodTests {
    let capture = LogCapture()
    static let handshakeTimeout = 2

    struct Answer {
        let text: String
        let closed: Bool
        var okCount: Int { text.components(separatedBy: "HTTP/1.1 200 ").count - 1 }
    }

    func hubConfig(_ dir: String, httpPort: UInt16, target: UInt16) -> String {
        """
        [node]
        name = "hub"
        http_listen = ["127.0.0.1:\(httpPort)"]
        \(TestCluster.nodeFiles("hub", dir: dir))

        [limits]
        handshake_timeout = "\(Self.handshakeTimeout)s"

        [[peer]]
        name = "branch"
        key = "branch"
        allow_targets = ["127.0.0.1:\(target)"]
        """
    }

    func branchConfig(_ dir: String, httpPort: UInt16, forward: (UInt16, UInt16)) -> String {
        """
        [node]
        name = "branch"
        \(TestCluster.nodeFiles("branch", dir: dir))

        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "http://127.0.0.1:\(httpPort)/byst"
        http_mode = "split"
        links = 2

        [[forward]]
        listen = "127.0.0.1:\(forward.0)"
        peer = "hub"
        target = "127.0.0.1:\(forward.1)"
        """
    }

    static func post(_ token: String, sequence: Int = 0) -> String {
        "POST /byst?t=\(token)&s=\(sequence) HTTP/1.1\r\nHost: hub\r\nContent-Length: 0\r\n\r\n"
    }

    static func randomToken() -> String { Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) }) }

    /// Opens `connections` connections from each of `sources`, sends each `tokens` pipelined
    /// zero-length POSTs with fresh tokens, and collects every answer until the hub closes the
    /// connection or `seconds` pass.
    static func flood(port: UInt16, sources: [UInt32], connections: Int, tokens: Int, seconds: Int) throws -> [Answer] {
        var sockets: [BlockingSocket] = []
        defer { for socket in sockets { socket.close() } }
        for source in sources {
            for _ in 0..<connections { sockets.append(try BlockingSocket.connect(port: port, from: source)) }
        }
        for socket in sockets {
            let burst = (0..<tokens).map { _ in post(randomToken()) }.joined()
            // The hub may close while the burst is still going in: that is an answer too.
            try? socket.sendText(burst)
        }
        let deadline = ContinuousClock.now + .seconds(seconds)
        return sockets.map { socket in
            let (bytes, closed) = socket.drain(until: deadline)
            return Answer(text: String(decoding: bytes, as: UTF8.self), closed: closed)
        }
    }

    func metrics(_ node: RunningNode) async throws -> Exposition {
        Exposition(parsing: try await node.withNode { $0.metricsExposition() })
    }

    func links(of node: RunningNode) async throws -> Int {
        try await node.status().peers.first?.sessions.first?.links.count ?? 0
    }

    /// Starts the hub, then the branch while `attack` runs on its own thread; checks that the
    /// branch's 2 split links come up and carry data, also once the handshake deadline of
    /// their upstream connections has passed. Returns the attack's answers for assertions.
    func underAttack(_ attack: @escaping @Sendable (UInt16) throws -> [Answer],
                     check: (RunningNode, [Answer]) async throws -> Void) async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let httpPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(bed.dir, httpPort: httpPort, target: bed.digest.port),
                                              directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        let attacking = Task { try await onThread { try attack(httpPort) } }
        let branch = try await TestCluster.start(branchConfig(bed.dir, httpPort: httpPort, forward: (forwardPort, bed.digest.port)),
                                                 directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        let up = try await TestCluster.waitUntil(seconds: 15) { try await links(of: branch.node) == 2 }
        #expect(up, "split links did not come up: \(capture.lines.withLock { $0.suffix(12).joined(separator: "\n") })")
        // While the flood arrives, the accept gate may turn away a link's connection (the event
        // loop behind): that link is dialed again. Once the links are up, none may fail.
        let failuresWhileFlooded = upstreamFailures().count
        for round in 0..<2 {
            let (sent, received) = try await onThread { try sendThroughForward(port: forwardPort, count: 4 << 20, seed: UInt64(round)) }
            #expect(sent == received, "round \(round): SHA-256 differs")
            // Past the handshake deadline: the links' upstream connections must have been settled.
            try await Task.sleep(for: .seconds(Self.handshakeTimeout + 1))
        }
        #expect(try await links(of: branch.node) == 2)
        let failures = upstreamFailures()
        #expect(failures.count == failuresWhileFlooded, "a legitimate upstream POST failed: \(failures)")
        #expect(!capture.contains("split upstream connection from 127.0.0.1:"), "a legitimate upstream connection was never settled")
        #expect(try await hub.node.withNode { $0.admission.pendingCount } == 0)
        try await check(hub.node, try await attacking.value)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    func upstreamFailures() -> [String] { capture.lines.withLock { $0.filter { $0.contains("split-mode upstream") } } }

    func hits(_ node: RunningNode, _ limit: String) async throws -> Double {
        try await metrics(node).value("byst_limit_hits_total", ["limit": limit]) ?? 0
    }

    @Test func thousandsOfPipelinedTokensOnOneConnectionAreRefused() async throws {
        try await underAttack({ port in
            try Self.flood(port: port, sources: [0x7F00_0002], connections: 1, tokens: 4200, seconds: 10)
        }) { hub, answers async throws in
            let answer = try #require(answers.first)
            #expect(answer.okCount <= 1, "\(answer.okCount) tokens accepted on one connection")
            #expect(answer.text.contains("HTTP/1.1 429 "), "no 429: \(answer.text.suffix(200).debugDescription)")
            #expect(answer.closed, "the flooding connection was left open")
            #expect(try await hits(hub, "split_unpaired_per_connection") >= 1)
            // The branch's links (paired) and at most the one token the stranger got in.
            let tokens = try await hub.withNode { $0.splitRegistry.count }
            #expect(tokens <= 4, "\(tokens) link tokens held")
        }
    }

    @Test func sixtyFourConnectionsFromTwoSourcesAreBoundedPerConnectionAndSource() async throws {
        try await underAttack({ port in
            try Self.flood(port: port, sources: [0x7F00_0002, 0x7F00_0003], connections: 32, tokens: 4, seconds: 10)
        }) { hub, answers async throws in
            #expect(answers.count == 64)
            #expect(answers.filter { $0.okCount > 1 }.count == 0, "connections with more than one token accepted")
            // On a loaded machine the accept gate may close a flood connection as it is accepted
            // (the event loop behind; limit `accept_rate`, which only the gate counts), before
            // any POST of it is read. Every other connection gets its 429.
            let without429 = answers.filter { !$0.text.contains("HTTP/1.1 429 ") }
            let turnedAway = try await hits(hub, "accept_rate")
            #expect(without429.allSatisfy { $0.text.isEmpty }, "answers without a 429: \(without429.map { $0.text.prefix(60) })")
            #expect(Double(without429.count) <= turnedAway, "\(without429.count) connections without a 429, \(turnedAway) turned away")
            #expect(without429.count <= answers.count / 4, "\(without429.count) of \(answers.count) connections turned away")
            #expect(answers.filter { !$0.closed }.count == 0, "connections left open")
            let accepted = answers.reduce(0) { $0 + $1.okCount }
            #expect(accepted <= 2 * SplitRegistry.Limits().unpairedPerSource, "\(accepted) tokens accepted from 2 sources")
            #expect(try await hits(hub, "split_unpaired_per_connection") >= 1)
            #expect(try await hits(hub, "split_unpaired_per_source") >= 1)
        }
    }

    @Test func connectionsFeedingOnlyUnpairedTokensAreClosedAtTheHandshakeDeadline() async throws {
        try await underAttack({ port in
            // One polite POST per connection, then silence: nothing for a link ever follows.
            try Self.flood(port: port, sources: [0x7F00_0004], connections: 8, tokens: 1, seconds: Self.handshakeTimeout + 3)
        }) { hub, answers async throws in
            #expect(answers.filter { $0.okCount != 1 }.count == 0, "connections whose POST was not answered with 200")
            #expect(answers.filter { !$0.closed }.count == 0, "connections that outlived the handshake deadline")
            let timeouts = try await metrics(hub).value("byst_handshake_failures_total", ["reason": "timeout"]) ?? 0
            #expect(timeouts == 8)
        }
    }

    /// While their tokens wait, such connections count as unfinished handshakes.
    @Test func connectionsFeedingUnpairedTokensCountAsPendingHandshakes() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let httpPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(bed.dir, httpPort: httpPort, target: bed.digest.port),
                                              directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        let sockets = try await onThread { () throws -> [BlockingSocket] in
            let sockets = try (0..<8).map { _ in try BlockingSocket.connect(port: httpPort, from: 0x7F00_0005) }
            for socket in sockets { try socket.sendText(Self.post(Self.randomToken())) }
            return sockets
        }
        defer { for socket in sockets { socket.close() } }
        let answered = try await onThread {
            let deadline = ContinuousClock.now + .seconds(1)
            return sockets.map { String(decoding: $0.drain(until: deadline).bytes, as: UTF8.self) }
        }
        #expect(answered.allSatisfy { $0.hasPrefix("HTTP/1.1 200 ") }, "\(answered)")
        #expect(try await hub.node.withNode { $0.admission.pendingCount } == 8)
        try await hub.node.shutdown()
    }
}
