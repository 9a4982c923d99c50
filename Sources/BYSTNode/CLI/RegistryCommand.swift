import ArgumentParser
import Foundation
import Logging

/// `byst registry …`: the embedded port registry (docs/OPERATIONS.md, "High availability").
struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry", abstract: "The embedded HA port registry.",
        subcommands: [Serve.self, Bench.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a node that also serves the port registry to its peers (gateways and branches).",
            discussion: """
                The config is an ordinary node config: its [[peer]]s are the registry's clients, each \
                authenticated by its key. Clients set `registry = "peer:NAME"` with a [[peer]] NAME \
                pointing here.
                """)

        @Option(name: [.short, .customLong("config")], help: "Config file.") var config = "/etc/byst/registry.toml"
        @Option(help: "After a (re)start, how long only previous owners may take ports back (relet).") var grace = "10s"
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
        @Option(help: "Log format: text, or json (one JSON object per line).") var logFormat = LogFormat.text

        func run() async throws {
            guard let grace = Duration.parseConfig(grace), grace <= .seconds(600) else {
                throw CLIError("--grace must be a duration like \"10s\" (at most 10 minutes), got '\(grace)'")
            }
            try await runDaemon(config: config, logLevel: logLevel, logFormat: logFormat, registryGrace: grace)
        }
    }

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the embedded registry: register/query operations per second over one stream.",
            discussion: "Runs the node of --config (one of the registry's clients) only for the measurement.")

        @Option(name: [.short, .customLong("config")], help: "A client's config file.") var config: String
        @Option(help: "The [[peer]] that serves the registry.") var peer = "registry"
        @Option(help: "Operations to run (register and query alternate).") var operations = 100_000
        @Option(help: "Requests in flight at once (1: strict request/response).") var window = 64

        func run() async throws {
            guard (1...100_000_000).contains(operations), (1...4096).contains(window) else {
                throw CLIError("--operations must be 1…100000000 and --window 1…4096")
            }
            let nodeConfig: NodeConfig
            do { nodeConfig = try NodeConfig.load(path: config) } catch { throw CLIError(error.description) }
            let keys: KeyStore
            do { keys = try KeyStore.load(path: nodeConfig.keyStore) } catch { throw CLIError(error.description) }
            let node = try await RunningNode.start(config: nodeConfig, keys: keys, logger: Logger(label: "byst", factory: { _ in SwiftLogNoOpLogHandler() }))
            let (peer, operations, window) = (peer, operations, window)
            let result: RegistryBench.Result
            do {
                result = try await node.eventLoop.flatSubmit {
                    let promise = node.eventLoop.makePromise(of: RegistryBench.Result.self)
                    node.withNodeOnLoop { RegistryBench(node: $0, peerName: peer, operations: operations, window: window, promise: promise).start() }
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
}
