import BYSTProto
import Foundation
import NIOCore
import Testing
@testable import BYSTNode

/// The embedded registry in process: two gateways race for one HA port; garbage on one
/// client's registry stream resets that stream only; a gateway that stops hands over at once.
@Suite(.serialized) struct RegistryIntegrationTests {
    @Test func gatewaysShareAPortAndHostileStreamsAffectNobodyElse() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = LogCapture()
        let names = ["hub-a", "hub-b", "prober"]
        var serverKeys: [(String, PreSharedKey)] = []
        var clientStores: [String: KeyStore] = [:]
        for name in names {
            let key = try PreSharedKey.generate()
            serverKeys.append((name, key))
            clientStores[name] = try TestCluster.keyStore(dir, name, [("registry", key)])
        }
        let registryKeys = try TestCluster.keyStore(dir, "registry", serverKeys)
        let registryPort = try BlockingSocket.freePort()
        let registry = try await TestCluster.start("""
            [node]
            name = "registry"
            listen = ["127.0.0.1:\(registryPort)"]
            \(TestCluster.nodeFiles("registry", dir: dir))
            \(names.map { "[[peer]]\nname = \"\($0)\"\nkey = \"\($0)\"\n" + ($0 == "prober" ? "" : "ports = [\"hq\"]\n") }.joined())
            """, directory: dir, name: "registry", keys: registryKeys, capture: capture, registryGrace: .zero)
        var nodes: [String: TestNode] = [:]
        for name in names {
            let port = try BlockingSocket.freePort()
            let ha = name == "prober" ? "" : "[ha]\nport = \"hq\"\nadvertise = [\"byst://127.0.0.1:\(port)\"]\n"
            let keys = try #require(clientStores[name])
            nodes[name] = try await TestCluster.start("""
                [node]
                name = "\(name)"
                listen = ["127.0.0.1:\(port)"]
                registry = "peer:registry"
                registry_lease = "5s"
                \(TestCluster.nodeFiles(name, dir: dir))
                \(ha)
                [[peer]]
                name = "registry"
                key = "registry"
                endpoint = "byst://127.0.0.1:\(registryPort)"
                links = 1
                """, directory: dir, name: name, keys: keys, capture: capture)
        }
        let hubA = try #require(nodes["hub-a"]), hubB = try #require(nodes["hub-b"]), prober = try #require(nodes["prober"])
        func roles() async throws -> [String] {
            [try await hubA.node.status().ha?.ports.first?.role ?? "-", try await hubB.node.status().ha?.ports.first?.role ?? "-"]
        }
        // Settled: one active, the other standby *after* its claim was answered (it starts standby).
        let settled = try await TestCluster.waitUntil(seconds: 10) {
            let a = try await hubA.node.status().ha?.ports.first, b = try await hubB.node.status().ha?.ports.first
            return [a?.role ?? "-", b?.role ?? "-"].sorted() == ["active", "standby"] && (a?.transitions ?? 0) > 0 && (b?.transitions ?? 0) > 0
        }
        let initialRoles = try await roles()
        #expect(settled, "roles: \(initialRoles)")
        let transitions = [try await hubA.node.status().ha?.ports.first?.transitions, try await hubB.node.status().ha?.ports.first?.transitions]

        // The prober opens its own registry stream and sends a message of an unknown kind.
        let reset = LockedBox<String?>(nil)
        try await prober.node.withNode { node in
            guard let session = node.peer(named: "registry")?.sessionForNewStream() else { return }
            let stream = RegistryStream(session: session)
            stream.onClose = { reason in reset.withLock { $0 = reason } }
            guard let id = session.openStream(target: RegistryStream.target, endpoint: stream) else { return }
            stream.id = id
            var garbage = ByteBuffer(bytes: [0, 0, 0, 5, 0x7E, 0, 0, 0, 1])
            _ = session.send(&garbage, on: id)
        }
        let wasReset = try await TestCluster.waitUntil(seconds: 5) { reset.withLock { $0 } != nil }
        #expect(wasReset)
        #expect(reset.withLock { $0 }?.contains("protocol error") == true, "\(reset.withLock { $0 } ?? "")")
        try await Task.sleep(for: .seconds(5.5))  // longer than a lease: everyone else kept theirs
        let rolesAfter = try await roles()
        #expect(rolesAfter.sorted() == ["active", "standby"])
        let transitionsAfter = [try await hubA.node.status().ha?.ports.first?.transitions, try await hubB.node.status().ha?.ports.first?.transitions]
        #expect(transitionsAfter == transitions)
        let proberConnected = try await prober.node.status().registry?.connected
        #expect(proberConnected == true)
        let server = try #require(try await registry.node.status().registry_server)
        #expect(server.ports == 1)

        // The active gateway stops cleanly: it releases the port, the other takes it at once —
        // well before the lease (5 s) could have run out (3 s leaves room for a loaded machine).
        let (active, standby) = try await hubA.node.status().ha?.ports.first?.role == "active" ? (hubA, hubB) : (hubB, hubA)
        let stopped = Date()
        try await active.node.shutdown()
        let tookOver = try await TestCluster.waitUntil(seconds: 3) { try await standby.node.status().ha?.ports.first?.role == "active" }
        #expect(tookOver, "handover took longer than 3 s (lease 5 s): the port was not released")
        #expect(Date().timeIntervalSince(stopped) < 3)

        for node in [standby, prober, registry] { try await node.node.shutdown() }
    }
}
