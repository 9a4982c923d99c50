import ArgumentParser
import Glibc

/// `byst`: the root of the command-line interface.
public struct BYSTCommand: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "byst",
        abstract: "BYST: a secure N:M tunnel / VPN for Linux gateways.",
        version: version,
        subcommands: [UpCommand.self, CheckCommand.self, StatusCommand.self, ReloadCommand.self, RegistryCommand.self, HACommand.self, KeyCommand.self,
                      PeerCommand.self, InviteCommand.self, JoinCommand.self, DemoCommand.self]
    )

    public init() {}

    /// Parses and runs `arguments`; returns the process exit code. Errors print one line
    /// (`byst: error: …`) to stderr; help and version print in full.
    public static func run(_ arguments: [String]) async -> Int32 {
        await CommandLineRunner.run(Self.self, arguments, name: "byst") { $0 is CLIError }
    }
}

/// A failure the CLI reports as one line and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
