import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// Reflection: a node that both dials and accepts peer "b" with the same PSK. An on-path
/// attacker turns its connection to B back to its own listener (here the endpoint simply
/// points there): before node names were checked, the node accepted its own link as "b"
/// and served the forward meant for B itself.
@Suite(.serialized) struct ReflectionTests {
    @Test func aNodeDoesNotAcceptItsOwnLinkAsThePeer() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = LogCapture()
        let target = try DigestServer()
        defer { target.stop() }
        let listenPort = try BlockingSocket.freePort(), forwardPort = try BlockingSocket.freePort()
        let a = try await TestCluster.start("""
            [node]
            name = "a"
            listen = ["127.0.0.1:\(listenPort)"]
            \(TestCluster.nodeFiles("a", dir: dir))
            [[peer]]
            name = "b"
            key = "b"
            endpoint = "byst://127.0.0.1:\(listenPort)"
            links = 2
            allow_targets = ["127.0.0.1:\(target.port)"]
            [[forward]]
            listen = "127.0.0.1:\(forwardPort)"
            peer = "b"
            target = "127.0.0.1:\(target.port)"
            """, directory: dir, name: "a", keys: try TestCluster.keyStore(dir, "a", [("b", try PreSharedKey.generate())]),
            capture: capture)
        let reflected = try await TestCluster.waitUntil(seconds: 10) {
            let exposition = try await a.node.withNode { $0.metricsExposition() }
            return exposition.contains("byst_handshake_failures_total{reason=\"reflected\"}")
                && !exposition.contains("byst_handshake_failures_total{reason=\"reflected\"} 0")
        }
        #expect(reflected, "no handshake was refused as reflected")
        let links = try await a.node.status().peers.flatMap(\.sessions).flatMap(\.links).filter { $0.state == "up" }
        #expect(links.isEmpty, "the node holds a link to itself: \(links.map(\.remote))")
        // The forward finds no link to B: nothing reaches the target through the node itself
        // (the target would answer with the SHA-256 of what it got).
        let client = try BlockingSocket.connect(port: forwardPort)
        defer { client.close() }
        client.setReceiveTimeout(seconds: 3)
        try? client.sendText("meant for B")
        client.shutdownWrite()
        let answer = (try? client.readToEnd(limit: 64)) ?? []
        #expect(answer.isEmpty, "a stream meant for B was served by the node itself")
        try await a.node.shutdown()
    }
}
