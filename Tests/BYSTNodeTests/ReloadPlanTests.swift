import BYSTProto
import Testing
@testable import BYSTNode

/// What a reload changes, worked out from values alone (on a pool thread): which running
/// peers stay, which start over, which go, and what refuses the whole reload.
struct ReloadPlanTests {
    let keyA: PreSharedKey, keyB: PreSharedKey, keyC: PreSharedKey

    init() throws {
        (keyA, keyB, keyC) = (try .generate(), try .generate(), try .generate())
    }

    func config(_ peers: [(name: String, key: String, extra: String)], listen: String = "127.0.0.1:7000") throws -> NodeConfig {
        var text = "[node]\nname = \"hub\"\nlisten = [\"\(listen)\"]\n"
        for peer in peers { text += "\n[[peer]]\nname = \"\(peer.name)\"\nkey = \"\(peer.key)\"\n\(peer.extra)\n" }
        return try NodeConfig.parse(text, file: "hub.toml")
    }

    func keys(_ entries: [(String, PreSharedKey)]) -> KeyStore {
        KeyStore(path: "hub.keys", entries: entries.map { KeyStore.Entry(name: $0.0, key: $0.1) })
    }

    /// (kind, name) per entry: "kept i", "started", "replacing i".
    func shape(_ plan: ReloadPlan) -> [String] {
        plan.entries.map { entry in
            switch entry {
            case .kept(let index, _, _): "kept \(index)"
            case .started(let peer, _, _, let replacing): replacing.map { "\(peer.name) replacing \($0)" } ?? "\(peer.name) started"
            }
        }
    }

    @Test func unchangedPeersAreKeptAndOnlyTheDifferenceMoves() throws {
        let running = try config([("a", "a", ""), ("b", "b", ""), ("c", "c", "")])
        let new = try config([("c", "c", ""), ("a", "a", "allow_targets = [\"127.0.0.1:22\"]"), ("d", "b", "")])
        let plan = try ReloadPlan(running: running, new: new, keys: keys([("a", keyA), ("b", keyB), ("c", keyC)]))
        #expect(shape(plan) == ["kept 2", "a replacing 0", "d started"])
        #expect(plan.retired == [0, 1])
        #expect(plan.config == new)
    }

    @Test func aRotatedKeyKeepsThePeerWithItsNewKeys() throws {
        let running = try config([("a", "a", "")])
        let plan = try ReloadPlan(running: running, new: running, keys: keys([("a", keyA), ("a.next", keyB)]))
        guard case .kept(0, let key, let next) = plan.entries.first else { Issue.record("not kept: \(shape(plan))"); return }
        #expect(key.id == keyA.id && next?.id == keyB.id)
        #expect(plan.retired.isEmpty)
    }

    @Test func aMissingOrSharedKeyOrARestartOnlySettingRefusesTheReload() throws {
        let running = try config([("a", "a", ""), ("b", "b", "")])
        #expect(throws: ReloadError.self) { try ReloadPlan(running: running, new: running, keys: keys([("a", keyA)])) }
        let shared = try config([("a", "a", ""), ("b", "a2", "")]), moved = try config([("a", "a", ""), ("b", "b", "")], listen: "127.0.0.1:7001")
        do {
            _ = try ReloadPlan(running: running, new: shared, keys: keys([("a", keyA), ("a2", keyA), ("b", keyB)]))
            Issue.record("a key shared by two peers was accepted")
        } catch {
            #expect(error.description == "peers 'a' and 'b' use the same key: give each peer its own")
        }
        do {
            _ = try ReloadPlan(running: running, new: moved, keys: keys([("a", keyA), ("b", keyB)]))
            Issue.record("a new listen address was accepted")
        } catch {
            #expect(error.description.hasPrefix("[node] listen changed: that needs a restart"))
        }
    }
}
