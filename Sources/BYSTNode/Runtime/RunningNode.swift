import BYSTProto
import Logging
import NIOCore
import NIOPosix

/// A started node and its event loop, safe to hold from any task (`byst up`, tests).
/// Everything inside runs on the node's single event-loop thread.
public final class RunningNode: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let node: NIOLoopBound<Node>

    private init(group: MultiThreadedEventLoopGroup, node: NIOLoopBound<Node>) {
        self.group = group
        self.node = node
    }

    /// Builds the node from its config and keys and binds its listeners; fails with the
    /// first listener or control socket that cannot be bound.
    /// `registryGrace`: serve the embedded registry (`byst registry serve`) with this restart
    /// grace, releasing a closed session's ports after `registryCloseGrace`.
    public static func start(config: NodeConfig, keys: KeyStore, logger: Logger, configPath: String? = nil,
                             registryGrace: Duration? = nil,
                             registryCloseGrace: Duration = PortRegistry.Configuration().closeGrace) async throws -> RunningNode {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        do {
            let node = try await loop.flatSubmit {
                do {
                    let node = try Node(config: config, keys: keys, eventLoop: loop, logger: logger, configPath: configPath)
                    if let registryGrace { node.registryServer = RegistryServer(node: node, grace: registryGrace, closeGrace: registryCloseGrace) }
                    let bound = NIOLoopBound(node, eventLoop: loop)
                    return node.start().map { bound }
                } catch {
                    return loop.makeFailedFuture(error)
                }
            }.get()
            return RunningNode(group: group, node: node)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    package var eventLoop: EventLoop { node.eventLoop }

    /// Runs `body` on the node's loop.
    func withNode<T: Sendable>(_ body: @escaping @Sendable (Node) -> T) async throws -> T {
        let node = self.node
        return try await node.eventLoop.submit { body(node.value) }.get()
    }

    /// Runs `body` with the node; only from a task already on the node's loop.
    func withNodeOnLoop(_ body: (Node) -> Void) { body(node.value) }

    func status() async throws -> StatusReport {
        try await withNode { $0.status() }
    }

    /// Re-reads the config file and key store (SIGHUP); the summary, or why nothing changed.
    public func reload() async throws -> Result<String, ReloadError> {
        let node = self.node
        return try await node.eventLoop.flatSubmit { node.value.reloadFromDisk() }.get()
    }

    /// Graceful stop: go-away to peers, open streams reset, listeners and links closed.
    public func shutdown() async throws {
        let node = self.node
        try await node.eventLoop.flatSubmit { node.value.shutdown() }.get()
        try await group.shutdownGracefully()
    }
}
