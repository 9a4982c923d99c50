import ArgumentParser
import BYSTNode
import Glibc

/// `byst-bench …`: load generators for the test and benchmark scripts, not for operators
/// (built with every `swift build`, not installed).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "byst-bench",
        abstract: "Load generators for BYST's own tests and benchmarks.",
        subcommands: [FloodCommand.self, RegistryBenchCommand.self])

    /// Parses and runs `arguments`; returns the process exit code (errors as `byst`'s, one line).
    static func run(_ arguments: [String]) async -> Int32 {
        await CommandLineRunner.run(Self.self, arguments, name: "byst-bench") { $0 is BenchError }
    }
}

/// A failure the command reports as one line and exit status 1.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
