import BYSTNode
import BYSTProto
import Foundation
import NIOCore
import Testing

/// The `package` entry `byst-bench registry` (Benchmarks/BenchTool) drives the registry through:
/// `RunningNode.openRegistryStream`. Imported without `@testable`, as the bench does.
@Suite(.serialized) struct RegistryBenchEntryTests {
    @Test func aRegistryStreamOpensOnceTheLinkIsUpAndIsAnswered() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = LogCapture()
        let key = try PreSharedKey.generate()
        let registryKeys = try TestCluster.keyStore(dir, "registry", [("client", key)])
        let clientKeys = try TestCluster.keyStore(dir, "client", [("registry", key)])
        let registryPort = try BlockingSocket.freePort()
        let registry = try await TestCluster.start("""
            [node]
            name = "registry"
            listen = ["127.0.0.1:\(registryPort)"]
            \(TestCluster.nodeFiles("registry", dir: dir))
            [[peer]]
            name = "client"
            key = "client"
            """, directory: dir, name: "registry", keys: registryKeys, capture: capture, registryGrace: .zero)
        let client = try await TestCluster.start("""
            [node]
            name = "client"
            \(TestCluster.nodeFiles("client", dir: dir))
            [[peer]]
            name = "registry"
            key = "registry"
            endpoint = "byst://127.0.0.1:\(registryPort)"
            links = 1
            """, directory: dir, name: "client", keys: clientKeys, capture: capture)
        let node = client.node

        let unknownPeer = try await node.eventLoop.submit {
            if case .noLink = node.openRegistryStream(toPeer: "nobody") { true } else { false }
        }.get()
        #expect(unknownPeer, "a peer that does not exist has no link")

        // As the bench does: retry every 50 ms until the link is up, then hello and its answer.
        var answer: RegistryMessage?
        for _ in 0..<200 where answer == nil {
            answer = try await node.eventLoop.flatSubmit { () -> EventLoopFuture<RegistryMessage?> in
                guard case .opened(let stream) = node.openRegistryStream(toPeer: "registry") else {
                    return node.eventLoop.makeSucceededFuture(nil)
                }
                let promise = node.eventLoop.makePromise(of: RegistryMessage?.self)
                stream.onClose = { reason in promise.fail(RegistryStreamEnded(reason: reason)) }
                stream.onMessage = { [weak stream] message in
                    stream?.onClose = nil
                    stream?.close()
                    promise.succeed(message)
                }
                stream.send(.request(id: 0, .hello(leaseMilliseconds: 10_000, relet: [])))
                return promise.futureResult
            }.get()
            if answer == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let reply = try #require(answer, "no registry stream within 10 s")
        if case .reply(id: 0, .welcome) = reply {} else { Issue.record("hello answered with \(reply)") }

        try await client.node.shutdown()
        try await registry.node.shutdown()
    }

    private struct RegistryStreamEnded: Error {
        let reason: String
    }
}
