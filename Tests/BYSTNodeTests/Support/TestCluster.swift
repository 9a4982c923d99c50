import BYSTProto
import Foundation
import Logging
@testable import BYSTNode

/// Collects log lines of the nodes under test so tests can assert on them.
final class LogCapture: Sendable {
    let lines = LockedBox<[String]>([])

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in CapturingHandler(capture: self) }
    }

    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.lines.withLock { $0.append("\(event.level) \(fields) \(event.message)") }
        }
    }
}

/// Key stores, configs and running nodes in a temporary directory.
struct TestNode {
    let config: NodeConfig
    let node: RunningNode
}

enum TestCluster {
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "byst-it-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A key store at `directory/name.keys` holding the given named keys.
    static func keyStore(_ directory: String, _ name: String, _ keys: [(String, PreSharedKey)]) throws -> KeyStore {
        var store = try KeyStore.load(path: "\(directory)/\(name).keys")
        for (keyName, key) in keys { try store.add(name: keyName, key: key) }
        try store.save()
        return store
    }

    /// A hub store holding the key as "branch" and a branch store holding it as "hub".
    static func pairedKeyStores(_ directory: String) throws -> (hub: KeyStore, branch: KeyStore) {
        let key = try PreSharedKey.generate()
        return (try keyStore(directory, "hub", [("branch", key)]), try keyStore(directory, "branch", [("hub", key)]))
    }

    /// `registryGrace`: the node also serves the embedded registry (`byst registry serve`).
    static func start(_ toml: String, directory: String, name: String, keys: KeyStore, capture: LogCapture,
                      registryGrace: Duration? = nil) async throws -> TestNode {
        let path = "\(directory)/\(name).toml"
        try toml.write(toFile: path, atomically: false, encoding: .utf8)
        let config = try NodeConfig.load(path: path)
        let node = try await RunningNode.start(config: config, keys: keys, logger: capture.logger(name), configPath: path,
                                               registryGrace: registryGrace)
        return TestNode(config: config, node: node)
    }

    /// The `[node]` lines the integration tests share: control socket and key store of node
    /// `name` in `dir`, and fast keepalives (250 ms unless given) with a 3 s dead-link timeout.
    static func nodeFiles(_ name: String, dir: String, keepalive: String = "250ms") -> String {
        """
        control_socket = "\(dir)/\(name).sock"
        key_store = "\(dir)/\(name).keys"
        keepalive_interval = "\(keepalive)"
        dead_link_timeout = "3s"
        """
    }

    /// A hub listening for plain links on 127.0.0.1:`port`, with peer "branch" allowed to
    /// open streams to `targets` on loopback; `nodeExtra` goes into `[node]`, `sections`
    /// (such as `[limits]`) before the peer, `peerExtra` into the peer.
    static func hubConfig(_ dir: String, port: UInt16, targets: [UInt16], nodeExtra: String = "", keepalive: String = "250ms",
                          sections: String = "", peerExtra: String = "") -> String {
        """
        [node]
        name = "hub"
        listen = ["127.0.0.1:\(port)"]
        \(nodeFiles("hub", dir: dir, keepalive: keepalive))
        \(nodeExtra)

        \(sections)

        [[peer]]
        name = "branch"
        key = "branch"
        allow_targets = [\(targets.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
        \(peerExtra)
        """
    }

    /// A branch that dials peer "hub" at `hubHost:hubPort` with `links` links and forwards
    /// each local port to a target behind the hub; `nodeExtra` goes into `[node]`.
    static func branchConfig(_ dir: String, name: String = "branch", hubHost: String = "127.0.0.1", hubPort: some BinaryInteger,
                             links: Int, forwards: [(UInt16, UInt16)] = [], nodeExtra: String = "",
                             keepalive: String = "250ms") -> String {
        var text = """
        [node]
        name = "\(name)"
        \(nodeFiles(name, dir: dir, keepalive: keepalive))
        \(nodeExtra)

        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "byst://\(hubHost):\(hubPort)"
        links = \(links)

        """
        for (listen, target) in forwards {
            text += """

            [[forward]]
            listen = "127.0.0.1:\(listen)"
            peer = "hub"
            target = "127.0.0.1:\(target)"

            """
        }
        return text
    }

    /// Polls `condition` every 50 ms for at most `seconds`.
    static func waitUntil(seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }
}

/// Where a two-node integration test starts: a temporary directory, hub and branch key
/// stores sharing one key (`branch` at the hub, `hub` at the branch), and a digest server as
/// the forward target. Call `close()` when done (`defer`).
struct TestBed {
    let dir: String
    let hubKeys: KeyStore
    let branchKeys: KeyStore
    let digest: DigestServer

    init() throws {
        dir = try TestCluster.temporaryDirectory()
        (hubKeys, branchKeys) = try TestCluster.pairedKeyStores(dir)
        digest = try DigestServer()
    }

    func close() {
        digest.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
