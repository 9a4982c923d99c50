import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// Two (or three) real nodes in this process on loopback, real sockets, real forwards.
@Suite(.serialized) struct IntegrationTests {
    let capture = LogCapture()

    /// The shared branch, with a long session linger (streams survive link losses here).
    func branchConfig(_ dir: String, name: String = "branch", hubHost: String = "127.0.0.1", hubPort: Int, links: Int,
                      forwards: [(UInt16, UInt16)]) -> String {
        TestCluster.branchConfig(dir, name: name, hubHost: hubHost, hubPort: hubPort, links: links, forwards: forwards,
                                 nodeExtra: "session_linger = \"60s\"")
    }

    func links(of node: RunningNode) async throws -> Int {
        try await node.status().peers.first?.sessions.first?.links.count ?? 0
    }

    @Test func eightStreamsSurviveLinkCutsEveryTwoHundredMilliseconds() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(dir, port: hubPort, targets: [digest.port]), directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        let relay = try await ChaosRelay.start(targetPort: Int(hubPort))
        let branch = try await TestCluster.start(
            branchConfig(dir, hubPort: relay.port, links: 4, forwards: [(forwardPort, digest.port)]), directory: dir,
            name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 4 })

        let streams = 8
        let size = 32 << 20
        let minimumCuts = 20
        let done = LockedBox(0)
        let cutsSoFar = LockedBox(0)
        let deadline = Date().addingTimeInterval(300)
        // Each stream sends its 32 MiB again until 20 cuts have happened (bounded at 5
        // minutes): a fast machine moves 8 × 32 MiB in fewer than 20 cuts' time.
        let transfers = (0..<streams).map { index in
            Task {
                defer { done.withLock { $0 += 1 } }
                var rounds: [(sent: [UInt8], received: [UInt8])] = []
                repeat {
                    rounds.append(try await onThread { try sendThroughForward(port: forwardPort, count: size, seed: UInt64(index + 1)) })
                } while cutsSoFar.value < minimumCuts && Date() < deadline
                return rounds
            }
        }
        // While data flows, the operator's view lists the 4 links with RTT and byte counters.
        try await Task.sleep(for: .milliseconds(800))
        let run = try byst(["status", "--json", "--socket", "\(dir)/branch.sock"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(run.stdout.utf8))
        let session = try #require(report.peers.first?.sessions.first)
        #expect(session.links.count == 4)
        #expect(session.links.allSatisfy { $0.rtt_ms != nil && $0.bytes_out > 0 && $0.bytes_in > 0 })

        // Chaos until every transfer has finished (bounded at 5 minutes).
        var cuts = 0
        while done.value < streams, Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            if relay.cutRandomConnection() { cuts += 1 }
            cutsSoFar.withLock { $0 = cuts }
        }
        var lost = 0, transfers32MiB = 0
        for (index, task) in transfers.enumerated() {
            for (round, (sent, received)) in try await task.value.enumerated() {
                #expect(sent == received, "stream \(index), round \(round): SHA-256 differs")
                if sent != received { lost += 1 }
                transfers32MiB += 1
            }
        }
        print("integration: \(streams) streams, \(transfers32MiB) × \(size >> 20) MiB, \(cuts) link cuts survived, \(lost) transfers corrupted")
        #expect(cuts >= minimumCuts)
        let reconnects = try await branch.node.status().peers.first?.reconnects ?? 0
        #expect(reconnects >= cuts / 2)
        try await branch.node.shutdown()
        try await relay.stop()
        try await hub.node.shutdown()
    }

    @Test func aStalledReaderDoesNotSlowOtherStreamsAndMemoryStaysBounded() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (hubKeys, branchKeys) = try TestCluster.pairedKeyStores(dir)
        let digest = try DigestServer()
        let stalled = try StalledServer()
        defer {
            digest.stop()
            stalled.stop()
        }
        let hubPort = try BlockingSocket.freePort()
        let stalledForward = try BlockingSocket.freePort()
        let flowingForward = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(dir, port: hubPort, targets: [digest.port, stalled.port]),
                                              directory: dir, name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            // A host name, so the dial goes through the resolver.
            branchConfig(dir, hubHost: "localhost", hubPort: Int(hubPort), links: 1,
                         forwards: [(stalledForward, stalled.port), (flowingForward, digest.port)]),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 1 })

        // A client pushes 64 MiB into the stalled target; it blocks once every window is full.
        let stalledClient = try BlockingSocket.connect(port: stalledForward)
        Thread.detachNewThread {
            let chunk = [UInt8](repeating: 0xAA, count: 1 << 20)
            for _ in 0..<64 { if (try? chunk.withUnsafeBytes { try stalledClient.sendAll($0) }) == nil { return } }
        }
        try await Task.sleep(for: .seconds(1))
        // Meanwhile another stream on the same link moves 16 MiB end to end.
        let (sent, received) = try await onThread { try sendThroughForward(port: flowingForward, count: 16 << 20, seed: 7) }
        #expect(sent == received)
        // The sender holds at most its per-stream send buffer for the stalled stream.
        let buffered = try await branch.node.withNode { node in
            node.peers.first?.outgoing?.machine.bufferedSendBytes ?? -1
        }
        #expect(buffered >= 0 && buffered <= SessionConfig().sendBufferLimit)
        stalledClient.shutdownBoth()
        stalledClient.close()
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    /// A hub, a ChaosRelay in front of it, and a branch whose `links` links through the relay are up.
    func hubAndBranchThroughRelay(_ bed: TestBed, links count: Int, holdCloseTowardsTarget: Bool = false) async throws
        -> (hub: TestNode, relay: ChaosRelay, branch: TestNode) {
        let hubPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(bed.dir, port: hubPort, targets: []), directory: bed.dir,
                                              name: "hub", keys: bed.hubKeys, capture: capture)
        let relay = try await ChaosRelay.start(targetPort: Int(hubPort), holdCloseTowardsTarget: holdCloseTowardsTarget)
        let branch = try await TestCluster.start(branchConfig(bed.dir, hubPort: relay.port, links: count, forwards: []),
                                                 directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == count })
        return (hub, relay, branch)
    }

    /// The branch's bytes stop reaching the hub while the hub's still reach the branch (one
    /// direction black-holed, as by a proxy that stopped passing request bodies on): the hub
    /// closes the link as dead and says why (PROTOCOL.md §5.5, "Close reasons"); the branch
    /// closes it at once with that reason (its own dead-link timer never fires: it still
    /// hears the hub), `byst status` on both shows the loss, and the branch dials again.
    @Test func aLinkWhoseUploadsStopIsClosedByThePeerSayingWhy() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let dir = bed.dir
        let (hub, relay, branch) = try await hubAndBranchThroughRelay(bed, links: 1)
        #expect(try await branch.node.status().peers.first?.last_link_loss == nil)

        relay.blackHoleTowardsTarget()
        // The hub's dead-link timeout is 3 s here.
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await branch.node.status().peers.first?.last_link_loss != nil })
        let loss = try #require(try await branch.node.status().peers.first?.last_link_loss)
        #expect(loss.cause.hasPrefix("the peer closed it: nothing of ours reached it for its dead-link timeout"), "\(loss.cause)")
        #expect(loss.index == 0 && loss.transport == "byst" && loss.losses == 1, "\(loss)")
        let ownDeadLink = capture.lines.withLock { $0.contains { $0.contains("node=branch") && $0.contains("dead link") } }
        #expect(!ownDeadLink, "the branch's own dead-link timer fired: it did not hear the hub's reason")
        let hubLoss = try #require(try await hub.node.status().peers.first?.last_link_loss)
        #expect(hubLoss.cause.hasSuffix("dead link") && hubLoss.losses == 1, "\(hubLoss)")
        let text = try byst(["status", "--socket", "\(dir)/branch.sock"]).stdout
        #expect(text.contains("  last link loss: link 0 (byst): the peer closed it: nothing of ours reached it"), "\(text)")
        #expect(text.contains("1 link lost since configured"), "\(text)")

        // A fresh connection through the relay carries both ways again.
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 1 })
        try await branch.node.shutdown()
        try await hub.node.shutdown()
        try await relay.stop()
    }

    /// A peer that shuts down may reset its links (it closes with bytes unread): after its
    /// `goaway` that is no fault, so the hub logs it at info, not as a warning.
    @Test func linksResetByAPeerThatShutsDownAreNoWarning() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let (hub, relay, branch) = try await hubAndBranchThroughRelay(bed, links: 2, holdCloseTowardsTarget: true)
        try await branch.node.shutdown()
        #expect(try await TestCluster.waitUntil(seconds: 10) { capture.contains("peer is shutting down the session") })
        try await relay.resetTowardsTarget()
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await hub.node.status().peers.first?.links_up == 0 })
        let hubLines = capture.lines.withLock { $0.filter { $0.contains("node=hub") } }
        // Read as ECONNRESET, or met as EPIPE by a write.
        let resets = hubLines.filter { $0.contains("socket error") }
        #expect(!resets.isEmpty, "no link was reset: the test proves nothing\n\(hubLines.suffix(8).joined(separator: "\n"))")
        #expect(resets.allSatisfy { $0.hasPrefix("info ") }, "\(resets)")
        let loss = try await hub.node.status().peers.first?.last_link_loss
        #expect(loss?.cause.hasPrefix("the peer shut down: ") == true, "\(String(describing: loss))")
        try await hub.node.shutdown()
        try await relay.stop()
    }

    @Test func aPeerWithTheWrongKeyIsRefusedAndOthersAreUnaffected() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (hubKeys, branchKeys) = try TestCluster.pairedKeyStores(dir)
        let roguesKey = try PreSharedKey.generate()
        let rogueKeys = try TestCluster.keyStore(dir, "rogue", [("hub", roguesKey)])
        let digest = try DigestServer()
        defer { digest.stop() }
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(dir, port: hubPort, targets: [digest.port]), directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        let rogue = try await TestCluster.start(
            branchConfig(dir, name: "rogue", hubPort: Int(hubPort), links: 2, forwards: []), directory: dir,
            name: "rogue", keys: rogueKeys, capture: capture)
        let branch = try await TestCluster.start(
            branchConfig(dir, hubPort: Int(hubPort), links: 4, forwards: [(forwardPort, digest.port)]), directory: dir,
            name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 4 })
        let (sent, received) = try await onThread { try sendThroughForward(port: forwardPort, count: 1 << 20, seed: 3) }
        #expect(sent == received)
        #expect(try await links(of: rogue.node) == 0)
        #expect(try await hub.node.status().handshake_failures > 0)
        #expect(capture.contains("handshake failed: unknownKeyID(\(roguesKey.id))"))
        try await rogue.node.shutdown()
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func farEndFailuresReachTheClientAsResetsAndTargetsAreDeniedByDefault() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (hubKeys, branchKeys) = try TestCluster.pairedKeyStores(dir)
        let hubPort = try BlockingSocket.freePort()
        let closedPort = try BlockingSocket.freePort()  // nothing listens there
        let deniedPort = try BlockingSocket.freePort()
        let toClosed = try BlockingSocket.freePort()
        let toDenied = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(dir, port: hubPort, targets: [closedPort]), directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            branchConfig(dir, hubPort: Int(hubPort), links: 2, forwards: [(toClosed, closedPort), (toDenied, deniedPort)]),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await links(of: branch.node) == 2 })
        for port in [toClosed, toDenied] {
            let outcome = try await onThread { () -> String in
                let socket = try BlockingSocket.connect(port: port)
                defer { socket.close() }
                do {
                    let bytes = try socket.readToEnd()
                    return "clean end after \(bytes.count) bytes"
                } catch let failure as BlockingSocket.Failure {
                    return failure.code == ECONNRESET ? "reset" : "\(failure)"
                }
            }
            #expect(outcome == "reset", "forward to port \(port): \(outcome)")
        }
        #expect(capture.contains("asked for target 127.0.0.1:\(deniedPort): not in its allow_targets; refused"))
        // The branch's operator learns why, from the reset code (info level, rate-limited).
        #expect(capture.contains("forward to 127.0.0.1:\(deniedPort): the peer refused the stream: target not allowed"))
        #expect(capture.contains("forward to 127.0.0.1:\(closedPort): the peer refused the stream: connect failed"))
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }
}
