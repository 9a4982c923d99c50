import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// A branch whose links cannot come up says why at the default log level, once per cause, and
/// `byst status` shows the last error; a hub's 403 is told from a proxy's by `BYST-Refusal`.
@Suite(.serialized) struct DialFailureIntegrationTests {
    func branchConfig(_ dir: String, endpoint: String, extra: String = "") -> String {
        """
        [node]
        name = "branch"
        \(TestCluster.nodeFiles("branch", dir: dir))

        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "\(endpoint)"
        links = 4
        \(extra)
        """
    }

    func lines(_ capture: LogCapture, containing text: String) -> [String] {
        capture.lines.withLock { $0.filter { $0.contains(text) } }
    }

    /// The issue's example: a proxy name that does not resolve, in auto mode, with 4 links
    /// retrying for 4 s. One line names the name; no "did not get through" from auto.
    @Test func aProxyNameThatDoesNotResolveIsLoggedOnceWithTheName() async throws {
        let capture = LogCapture()
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try TestCluster.pairedKeyStores(dir)
        let port = try BlockingSocket.freePort()
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: "http://127.0.0.1:\(port)/byst", extra: "http_proxy = \"http://proxy.invalid:3128\""),
            directory: dir, name: "branch", keys: keys.branch, capture: capture)
        try await Task.sleep(for: .seconds(4))
        let status = try await branch.node.status()
        try await branch.node.shutdown()

        let named = lines(capture, containing: "proxy.invalid")
        #expect(named.count == 1, "want one line naming the proxy: \(named)")
        #expect(named.first?.hasPrefix("info ") == true && named.first?.contains("name not resolved: proxy.invalid (the proxy)") == true,
                "\(named)")
        #expect(named.first?.contains("peer=hub") == true)
        #expect(lines(capture, containing: "did not get through").isEmpty, "auto flip-flopped at info")
        let peer = try #require(status.peers.first)
        #expect(peer.proxy == "proxy.invalid:3128 (forward)")
        let error = try #require(peer.last_error)
        #expect(error.cause == "name not resolved: proxy.invalid (the proxy)")
        #expect(error.failing)
        #expect(error.attempts >= 8, "4 links for 4 s should have tried more: \(error.attempts)")
        // The age is the latest attempt's, not the first's (a loaded machine may resolve slowly,
        // so compare with the run of failures rather than with the sleep).
        let failingFor = try #require(error.failing_seconds)
        #expect(error.seconds_ago < failingFor, "latest attempt \(error.seconds_ago) s ago, failing for \(failingFor) s")
        // The text view says the same.
        #expect(StatusText.render(status).contains("last error"))
        #expect(StatusText.render(status).contains("name not resolved: proxy.invalid"))
    }

    /// A "proxy" that answers every request with a fixed status, without the hub's marker.
    @Test(arguments: [(403, "a proxy forbids the request"), (407, "HTTP 407 from the proxy")])
    func aProxysOwnRefusalIsNotTakenForTheHubs(_ status: Int, _ expected: String) async throws {
        let capture = LogCapture()
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try TestCluster.pairedKeyStores(dir)
        let proxy = try await FixedAnswerServer.start(
            answer: "HTTP/1.1 \(status) Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: "http://127.0.0.1:9/byst", extra: "http_proxy = \"http://127.0.0.1:\(proxy.port)\""),
            directory: dir, name: "branch", keys: keys.branch, capture: capture)
        try await Task.sleep(for: .seconds(2))
        let report = try await branch.node.status()
        try await branch.node.shutdown()
        try await proxy.stop()
        let found = lines(capture, containing: expected)
        #expect(found.count == 1, "\(capture.lines.withLock { $0 })")
        #expect(found.first?.hasPrefix("warning ") == true)
        #expect(!capture.contains("the hub refused"))
        // Neither status says anything about the mode: auto stays on duplex, quietly.
        #expect(!capture.contains("mode works"))
        #expect(report.peers.first?.last_error?.cause.contains(expected) == true)
    }

    /// The hub does not know the branch's key: its 403 carries `BYST-Refusal: unknown-key`,
    /// which the branch reports as the key refused (duplex and split; both get a 403).
    @Test(arguments: ["duplex", "split"])
    func theHubsRefusalOfTheKeyIsReportedAsSuch(_ mode: String) async throws {
        let capture = LogCapture()
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Two key stores that do not share a key.
        let hubKeys = try TestCluster.keyStore(dir, "hub", [("branch", try PreSharedKey.generate())])
        let branchKeys = try TestCluster.keyStore(dir, "branch", [("hub", try PreSharedKey.generate())])
        let httpPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(
            """
            [node]
            name = "hub"
            http_listen = ["127.0.0.1:\(httpPort)"]
            \(TestCluster.nodeFiles("hub", dir: dir))

            [[peer]]
            name = "branch"
            key = "branch"
            """, directory: dir, name: "hub", keys: hubKeys, capture: LogCapture())
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: "http://127.0.0.1:\(httpPort)/byst", extra: "http_mode = \"\(mode)\""),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        try await Task.sleep(for: .seconds(2))
        let report = try await branch.node.status()
        try await branch.node.shutdown()
        try await hub.node.shutdown()
        let refused = lines(capture, containing: "the hub refused the key")
        #expect(refused.count == 1, "\(capture.lines.withLock { $0 })")
        #expect(refused.first?.hasPrefix("warning ") == true)
        #expect(!capture.contains("a proxy forbids"))
        #expect(report.peers.first?.last_error?.cause.contains("unknown-key") == true)
        #expect(report.peers.first?.proxy == nil)
    }

    /// Recovery: a hub that is not there yet, then is. One line for the refused connects, one
    /// when the links come up; `last_error` stays, no longer failing.
    @Test func recoveryIsLoggedOnceAndTheLastErrorIsKept() async throws {
        let capture = LogCapture()
        let bed = try TestBed()
        defer { bed.close() }
        let port = try BlockingSocket.freePort()
        let branch = try await TestCluster.start(
            TestCluster.branchConfig(bed.dir, hubPort: port, links: 2), directory: bed.dir, name: "branch", keys: bed.branchKeys,
            capture: capture)
        try await Task.sleep(for: .seconds(1))
        let hub = try await TestCluster.start(TestCluster.hubConfig(bed.dir, port: port, targets: []), directory: bed.dir,
                                              name: "hub", keys: bed.hubKeys, capture: LogCapture())
        let up = try await TestCluster.waitUntil(seconds: 15) {
            try await branch.node.status().peers.first?.sessions.first?.links.count == 2
        }
        #expect(up)
        let report = try await branch.node.status()
        try await branch.node.shutdown()
        try await hub.node.shutdown()
        #expect(lines(capture, containing: "connection refused by 127.0.0.1:\(port)").count == 1, "\(capture.lines.withLock { $0 })")
        let recovered = lines(capture, containing: "dial succeeded after")
        #expect(recovered.count == 1, "\(recovered)")
        let error = try #require(report.peers.first?.last_error)
        #expect(!error.failing)
        #expect(error.cause.contains("connection refused"))
    }
}
