import ArgumentParser

/// `byst registry …`: the embedded port registry (docs/OPERATIONS.md, "High availability").
struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry", abstract: "The embedded HA port registry.",
        subcommands: [Serve.self])

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
}
