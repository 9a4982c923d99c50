import ArgumentParser
import BYSTNode
import BYSTProto
import Foundation
import Logging
import NIOCore

/// `byst-bench registry`: register/query operations per second against the embedded registry
/// (scripts/bench-registry.sh; docs/PERFORMANCE.md, "Registry operations"). A node of its own
/// — the client config's — runs in this process only for the measurement.
struct RegistryBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Measure the embedded registry: register/query operations per second over one stream.",
        discussion: "Runs the node of --config (one of the registry's clients) only for the measurement.")

    @Option(name: [.short, .customLong("config")], help: "A client's config file.") var config: String
    @Option(help: "The [[peer]] that serves the registry.") var peer = "registry"
    @Option(help: "Operations to run (register and query alternate).") var operations = 100_000
    @Option(help: "Requests in flight at once (1: strict request/response).") var window = 64

    func run() async throws {
        guard (1...100_000_000).contains(operations), (1...4096).contains(window) else {
            throw BenchError("--operations must be 1…100000000 and --window 1…4096")
        }
        let nodeConfig: NodeConfig
        do { nodeConfig = try NodeConfig.load(path: config) } catch { throw BenchError(error.description) }
        let keys: KeyStore
        do { keys = try KeyStore.load(path: nodeConfig.keyStore) } catch { throw BenchError(error.description) }
        let node = try await RunningNode.start(config: nodeConfig, keys: keys, logger: Logger(label: "byst", factory: { _ in SwiftLogNoOpLogHandler() }))
        let (peer, operations, window) = (peer, operations, window)
        let result: RegistryBench.Result
        do {
            result = try await node.eventLoop.flatSubmit {
                let promise = node.eventLoop.makePromise(of: RegistryBench.Result.self)
                RegistryBench(node: node, peerName: peer, operations: operations, window: window, promise: promise).start()
                return promise.futureResult
            }.get()
        } catch {
            try? await node.shutdown()
            throw error
        }
        try await node.shutdown()
        let rate = Double(result.operations) / result.seconds
        print("registry bench: \(result.operations) operations in \(String(format: "%.3f", result.seconds)) s = \(Int(rate)) ops/s (window \(window), errors \(result.errors))")
    }
}

/// Drives one `@registry` stream as fast as the registry answers — alternating register and
/// query of up to 200 ports, `window` requests in flight — and reports operations per second.
/// Lives on the node's loop.
final class RegistryBench {
    struct Result: Sendable {
        var operations: Int
        var seconds: Double
        var errors: Int
    }

    private let node: RunningNode
    private let peerName: String
    private let operations: Int
    private let window: Int
    private let promise: EventLoopPromise<Result>
    private var stream: RegistryStream?
    private var sent = 0
    private var answered = 0
    private var errors = 0
    private var started: Nanoseconds = 0
    private var waits = 0

    init(node: RunningNode, peerName: String, operations: Int, window: Int, promise: EventLoopPromise<Result>) {
        self.node = node
        self.peerName = peerName
        self.operations = operations
        self.window = window
        self.promise = promise
    }

    /// The node's monotonic clock (BYSTNode's `Clocks.monotonic`).
    private static func monotonic() -> Nanoseconds { NIODeadline.now().uptimeNanoseconds }

    func start() {
        let stream: RegistryStream
        switch node.openRegistryStream(toPeer: peerName) {
        case .opened(let opened):
            stream = opened
        case .noLink:
            waits += 1
            guard waits < 200 else { return promise.fail(BenchError("no link to peer '\(peerName)' within 10 s")) }
            node.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { [self] in start() }
            return
        case .refused:
            return promise.fail(BenchError("cannot open a stream to peer '\(peerName)'"))
        }
        stream.onClose = { [self] reason in promise.fail(BenchError("registry stream ended: \(reason)")) }
        stream.onMessage = { [self] message in received(message) }
        self.stream = stream
        stream.send(.request(id: 0, .hello(leaseMilliseconds: 10_000, relet: [])))
    }

    private func received(_ message: RegistryMessage) {
        guard case .reply(let id, let reply) = message else { return }
        if id == 0 {
            started = Self.monotonic()
            return sendMore()
        }
        answered += 1
        if case .error = reply { errors += 1 }
        if answered == operations {
            stream?.onClose = nil
            stream?.close()
            return promise.succeed(Result(operations: answered, seconds: Double(Self.monotonic() - started) / 1e9, errors: errors))
        }
        sendMore()
    }

    private func sendMore() {
        while sent < operations, sent - answered < window {
            sent += 1
            let port = "bench-\(sent % 200)"
            let request: RegistryRequest = sent % 2 == 0 ? .query(port: port) : .register(port: port, info: "byst://127.0.0.1:7000")
            stream?.send(.request(id: UInt32(sent), request))
        }
    }
}
