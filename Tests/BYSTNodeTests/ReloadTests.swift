import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// Config reload and key rotation on running nodes: what changes is applied, what does not
/// change is not touched, and a bad new config changes nothing.
@Suite(.serialized) struct ReloadTests {
    let capture = LogCapture()

    func hubConfig(_ dir: String, port: UInt16, target: UInt16, peers: [(name: String, key: String)]) -> String {
        var text = """
            [node]
            name = "hub"
            listen = ["127.0.0.1:\(port)"]
            \(TestCluster.nodeFiles("hub", dir: dir))

            """
        for peer in peers {
            text += "\n[[peer]]\nname = \"\(peer.name)\"\nkey = \"\(peer.key)\"\nallow_targets = [\"127.0.0.1:\(target)\"]\n"
        }
        return text
    }

    func branchConfig(_ dir: String, hubPort: UInt16, forward: (UInt16, UInt16)) -> String {
        """
        [node]
        name = "branch"
        \(TestCluster.nodeFiles("branch", dir: dir))

        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "byst://127.0.0.1:\(hubPort)"
        links = 2

        [[forward]]
        listen = "127.0.0.1:\(forward.0)"
        peer = "hub"
        target = "127.0.0.1:\(forward.1)"
        """
    }

    func linkIDs(_ node: RunningNode, peer: String) async throws -> [Int] {
        try await node.status().peers.first { $0.name == peer }?.sessions.flatMap { $0.links.map(\.id) }.sorted() ?? []
    }

    @Test func reloadAddsAndRemovesPeersWithoutTouchingAnotherPeersStream() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shared = try PreSharedKey.generate()
        let hubKeys = try TestCluster.keyStore(dir, "hub", [("branch", shared), ("old", try .generate()), ("new", try .generate())])
        let branchKeys = try TestCluster.keyStore(dir, "branch", [("hub", shared)])
        let digest = try DigestServer()
        defer { digest.stop() }
        let port = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hubText = hubConfig(dir, port: port, target: digest.port, peers: [("branch", "branch"), ("old", "old")])
        let hub = try await TestCluster.start(hubText, directory: dir, name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(branchConfig(dir, hubPort: port, forward: (forwardPort, digest.port)), directory: dir,
                                                 name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await linkIDs(hub.node, peer: "branch").count == 2 })
        let linksBefore = try await linkIDs(hub.node, peer: "branch")
        let reconnectsBefore = try await branch.node.status().peers.first?.reconnects

        let transfer = Task { try await onThread { try sendThroughForward(port: forwardPort, count: 96 << 20, seed: 5) } }
        try await Task.sleep(for: .milliseconds(300))
        // A lookup by name before the reload (it indexes the peers by name)…
        #expect(try await hub.node.withNode { $0.peer(named: "old") != nil && $0.peer(named: "newcomer") == nil })
        // Remove "old", add "newcomer": the branch's stream goes on.
        try hubConfig(dir, port: port, target: digest.port, peers: [("branch", "branch"), ("newcomer", "new")])
            .write(toFile: "\(dir)/hub.toml", atomically: false, encoding: .utf8)
        let result = try await hub.node.reload()
        guard case .success(let summary) = result else { Issue.record("reload failed: \(result)"); return }
        #expect(summary.contains("added newcomer") && summary.contains("removed old"), "\(summary)")
        let (sent, received) = try await transfer.value
        #expect(sent == received, "the other peer's stream was disturbed")
        #expect(try await linkIDs(hub.node, peer: "branch") == linksBefore, "the other peer's links were touched")
        #expect(try await branch.node.status().peers.first?.reconnects == reconnectsBefore)
        let names = try await hub.node.status().peers.map(\.name)
        #expect(names == ["branch", "newcomer"])
        // … and after it finds the peers the node now has.
        #expect(try await hub.node.withNode { $0.peer(named: "old") == nil && $0.peer(named: "newcomer") === $0.peers.last })

        // A broken file changes nothing, and says where it is broken.
        try (hubText + "links = 0\n").write(toFile: "\(dir)/hub.toml", atomically: false, encoding: .utf8)
        guard case .failure(let error) = try await hub.node.reload() else { Issue.record("bad config accepted"); return }
        #expect(error.description.contains("hub.toml:"), "\(error)")
        #expect(try await hub.node.status().peers.map(\.name) == ["branch", "newcomer"])
        // Node-level settings need a restart.
        try hubText.replacingOccurrences(of: "name = \"hub\"", with: "name = \"hub2\"")
            .write(toFile: "\(dir)/hub.toml", atomically: false, encoding: .utf8)
        guard case .failure(let restart) = try await hub.node.reload() else { Issue.record("name change accepted"); return }
        #expect(restart.description.contains("needs a restart"), "\(restart)")
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    @Test func keyRotationMovesLinksToTheNewKeyWithoutLosingStreamBytes() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var (hubKeys, branchKeys) = try TestCluster.pairedKeyStores(dir)
        let digest = try DigestServer()
        defer { digest.stop() }
        let port = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(dir, port: port, target: digest.port, peers: [("branch", "branch")]),
                                              directory: dir, name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(branchConfig(dir, hubPort: port, forward: (forwardPort, digest.port)), directory: dir,
                                                 name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 10) { try await linkIDs(branch.node, peer: "hub").count == 2 })
        let oldKey = try #require(branchKeys.entry(named: "hub")?.key.id.description)
        let reconnectsBefore = try await branch.node.status().peers.first?.reconnects ?? -1

        let transfer = Task { try await onThread { try sendThroughForward(port: forwardPort, count: 128 << 20, seed: 8) } }
        try await Task.sleep(for: .milliseconds(200))
        // Step 1 at the hub: a new key beside the old one.
        let newKey = try PreSharedKey.generate()
        try hubKeys.add(name: "branch.next", key: newKey)
        try hubKeys.save()
        guard case .success(let hubSummary) = try await hub.node.reload() else { Issue.record("hub reload failed"); return }
        #expect(hubSummary.contains("new keys for branch"))
        // Step 2 at the branch: import it; its links re-handshake onto it.
        try branchKeys.add(name: "hub.next", key: newKey)
        try branchKeys.save()
        guard case .success = try await branch.node.reload() else { Issue.record("branch reload failed"); return }
        let moved = try await TestCluster.waitUntil(seconds: 15) {
            let keys = try await branch.node.status().peers.first?.sessions.flatMap { $0.links.compactMap(\.key_id) } ?? []
            return keys.count == 2 && keys.allSatisfy { $0 == newKey.id.description }
        }
        #expect(moved, "links did not move to the new key")
        let (sent, received) = try await transfer.value
        #expect(sent == received, "stream bytes lost during the rotation")
        // Step 3 on both: finish; the old key is gone and the links stay up.
        try hubKeys.promoteNext(of: "branch")
        try hubKeys.save()
        try branchKeys.promoteNext(of: "hub")
        try branchKeys.save()
        _ = try await hub.node.reload()
        _ = try await branch.node.reload()
        try await Task.sleep(for: .milliseconds(500))
        let keys = try await branch.node.status().peers.first?.sessions.flatMap { $0.links.compactMap(\.key_id) } ?? []
        #expect(keys.count == 2 && !keys.contains(oldKey))
        let reconnects = try await branch.node.status().peers.first?.reconnects ?? -1
        #expect(reconnects == reconnectsBefore, "links were dropped instead of replaced")
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }
}
