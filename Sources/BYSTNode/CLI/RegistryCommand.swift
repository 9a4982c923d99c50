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
        @Option(help: ArgumentHelp(
            "When a client's connection is closed by its end (FIN/RST: a crashed process) and it does not come back, release its ports after this (0s: only when its lease runs out).",
            valueName: "duration")) var closeGrace = "300ms"
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
        @Option(help: "Log format: text, or json (one JSON object per line).") var logFormat = LogFormat.text

        func run() async throws {
            guard let grace = Duration.parseConfig(grace), grace <= .seconds(600) else {
                throw CLIError("--grace must be a duration like \"10s\" (at most 10 minutes), got '\(grace)'")
            }
            let zero = ["0", "0s", "0ms"].contains(closeGrace)
            guard let closeGrace = zero ? Duration.zero : Duration.parseConfig(closeGrace), closeGrace <= .seconds(60) else {
                throw CLIError("--close-grace must be a duration like \"300ms\" (at most 60 s), got '\(closeGrace)'")
            }
            try await runDaemon(config: config, logLevel: logLevel, logFormat: logFormat, registryGrace: grace,
                                registryCloseGrace: closeGrace)
        }
    }
}
