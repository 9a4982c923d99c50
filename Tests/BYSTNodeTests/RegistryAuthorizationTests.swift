import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// HA port authorization (deny by default), attacked in process:
/// - a registry client whose `ports` do not list a port cannot take it, even while it is free;
/// - a branch ignores an owner that is not among its `gateways` and keeps its links;
/// - whatever owner a branch is sent to, the gateway must prove the branch's PSK.
@Suite(.serialized) struct RegistryAuthorizationTests {
    /// `byst registry serve` on loopback with these clients (name, key, the ports it may own).
    private func startRegistry(_ dir: String, capture: LogCapture,
                               clients: [(String, PreSharedKey, [String])]) async throws -> (TestNode, UInt16) {
        let port = try BlockingSocket.freePort()
        let peers = clients.map { name, _, ports in
            "[[peer]]\nname = \"\(name)\"\nkey = \"\(name)\"\n" + (ports.isEmpty ? "" : "ports = [\(ports.map { "\"\($0)\"" }.joined(separator: ", "))]\n")
        }
        let registry = try await TestCluster.start("""
            [node]
            name = "registry"
            listen = ["127.0.0.1:\(port)"]
            \(TestCluster.nodeFiles("registry", dir: dir))
            \(peers.joined())
            """, directory: dir, name: "registry", keys: try TestCluster.keyStore(dir, "registry", clients.map { ($0.0, $0.1) }),
            capture: capture, registryGrace: .zero)
        return (registry, port)
    }

    /// The registry, gateway hub-a (ports = ["hq"]), and a node holding only a branch's key
    /// for the registry ("rogue"), which tries to serve port hq itself.
    @Test func aClientMayNotTakeAPortItsPortsDoNotList() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = LogCapture()
        var registryKeys: [(String, PreSharedKey)] = []
        var clientStores: [String: KeyStore] = [:]
        for name in ["hub-a", "rogue"] {
            let key = try PreSharedKey.generate()
            registryKeys.append((name, key))
            clientStores[name] = try TestCluster.keyStore(dir, name, [("registry", key)])
        }
        let (registry, registryPort) = try await startRegistry(dir, capture: capture, clients: [
            ("hub-a", registryKeys[0].1, ["hq"]), ("rogue", registryKeys[1].1, []),
        ])
        func gateway(_ name: String) async throws -> TestNode {
            let port = try BlockingSocket.freePort()
            return try await TestCluster.start("""
                [node]
                name = "\(name)"
                listen = ["127.0.0.1:\(port)"]
                registry = "peer:registry"
                registry_lease = "3s"
                \(TestCluster.nodeFiles(name, dir: dir))
                [ha]
                port = "hq"
                advertise = ["byst://127.0.0.1:\(port)"]
                [[peer]]
                name = "registry"
                key = "registry"
                endpoint = "byst://127.0.0.1:\(registryPort)"
                links = 1
                """, directory: dir, name: name, keys: try #require(clientStores[name]), capture: capture)
        }
        // The port is free and the rogue asks first: refused, counted, logged.
        let rogue = try await gateway("rogue")
        let refused = try await TestCluster.waitUntil(seconds: 10) {
            (try await registry.node.status().registry_server?.denied ?? 0) > 0
        }
        #expect(refused, "the registry never refused the rogue's claim")
        try await Task.sleep(for: .seconds(1))
        let rogueRole = try await rogue.node.status().ha?.ports.first?.role
        #expect(rogueRole != "active", "a client without ports = [\"hq\"] took port hq")
        #expect(try await registry.node.status().registry_server?.ports == 0)
        #expect(capture.contains("registry: refused port 'hq' to client 'rogue'"))
        #expect(capture.contains("the registry does not let us own it"))
        let metrics = try await registry.node.withNode { $0.metricsExposition() }
        #expect(metrics.split(separator: "\n").contains { $0.hasPrefix("byst_registry_denied_total ") && !$0.hasSuffix(" 0") },
                "no denial in the metrics")

        // The real gateway takes it; the rogue stays standby behind it.
        let hubA = try await gateway("hub-a")
        let active = try await TestCluster.waitUntil(seconds: 10) { try await hubA.node.status().ha?.ports.first?.role == "active" }
        #expect(active)
        #expect(try await rogue.node.status().ha?.ports.first?.role != "active")
        #expect(try await registry.node.status().registry_server?.ports == 1)

        for node in [rogue, hubA, registry] { try await node.node.shutdown() }
    }

    /// A branch following port:hq with gateways = ["hub-a"], linked to hub-a.
    @Test func aBranchFollowsOnlyItsGatewaysAndTheGatewayMustProveTheKey() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = LogCapture()
        let hubRegistryKey = try PreSharedKey.generate(), branchRegistryKey = try PreSharedKey.generate()
        let branchHubKey = try PreSharedKey.generate()
        let hubPort = try BlockingSocket.freePort()
        let (registry, registryPort) = try await startRegistry(dir, capture: capture, clients: [
            ("hub-a", hubRegistryKey, ["hq"]), ("lyon", branchRegistryKey, []),
        ])
        let registryPeer = "[[peer]]\nname = \"registry\"\nkey = \"registry\"\nendpoint = \"byst://127.0.0.1:\(registryPort)\"\nlinks = 1\n"
        let hubA = try await TestCluster.start("""
            [node]
            name = "hub-a"
            listen = ["127.0.0.1:\(hubPort)"]
            registry = "peer:registry"
            \(TestCluster.nodeFiles("hub-a", dir: dir))
            [ha]
            port = "hq"
            advertise = ["byst://127.0.0.1:\(hubPort)"]
            [[peer]]
            name = "lyon"
            key = "lyon"
            \(registryPeer)
            """, directory: dir, name: "hub-a",
            keys: try TestCluster.keyStore(dir, "hub-a", [("registry", hubRegistryKey), ("lyon", branchHubKey)]), capture: capture)
        let branch = try await TestCluster.start("""
            [node]
            name = "lyon"
            registry = "peer:registry"
            \(TestCluster.nodeFiles("lyon", dir: dir))
            [[peer]]
            name = "hq"
            key = "hq"
            endpoint = "port:hq"
            gateways = ["hub-a"]
            links = 2
            \(registryPeer)
            """, directory: dir, name: "lyon",
            keys: try TestCluster.keyStore(dir, "lyon", [("registry", branchRegistryKey), ("hq", branchHubKey)]), capture: capture)
        func hqLinks() async throws -> Int {
            try await branch.node.status().peers.first { $0.name == "hq" }?.sessions.flatMap(\.links).filter { $0.state == "up" }.count ?? 0
        }
        let linked = try await TestCluster.waitUntil(seconds: 15) { try await hqLinks() == 2 }
        #expect(linked, "the branch did not get its 2 links to hub-a")
        let reconnects = try await branch.node.status().peers.first { $0.name == "hq" }?.reconnects

        // A node that holds no key of the branch's listens where a forged owner points.
        let roguePort = try BlockingSocket.freePort()
        let rogue = try await TestCluster.start("""
            [node]
            name = "rogue"
            listen = ["127.0.0.1:\(roguePort)"]
            \(TestCluster.nodeFiles("rogue", dir: dir))
            [[peer]]
            name = "someone"
            key = "someone"
            """, directory: dir, name: "rogue",
            keys: try TestCluster.keyStore(dir, "rogue", [("someone", try PreSharedKey.generate())]), capture: capture)

        // 1. The registry names an owner that is not among the branch's gateways: ignored.
        try await branch.node.withNode { node in
            node.registryEvent(.owner(port: "hq", PortOwner(node: "rogue", info: "byst://127.0.0.1:\(roguePort)")))
        }
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await hqLinks() == 2, "the branch dropped its links for an owner not among its gateways")
        #expect(try await branch.node.status().peers.first { $0.name == "hq" }?.reconnects == reconnects)
        #expect(capture.contains("owned by 'rogue', which is not among its gateways"))
        #expect(try await rogue.node.status().handshake_failures == 0, "the branch dialled the rogue")

        // 2. A listed gateway's name with the rogue's endpoint (a forged or misconfigured
        //    registry): the branch goes there, but the rogue cannot prove the branch's PSK.
        try await branch.node.withNode { node in
            node.registryEvent(.owner(port: "hq", PortOwner(node: "hub-a", info: "byst://127.0.0.1:\(roguePort)")))
        }
        let probed = try await TestCluster.waitUntil(seconds: 10) { try await rogue.node.status().handshake_failures > 0 }
        #expect(probed, "the branch never dialled the endpoint it was sent to")
        try await Task.sleep(for: .seconds(1))
        #expect(try await hqLinks() == 0, "a node without the branch's key got a link")
        #expect(try await rogue.node.status().peers.allSatisfy { $0.sessions.isEmpty })

        for node in [rogue, branch, hubA, registry] { try await node.node.shutdown() }
    }
}
