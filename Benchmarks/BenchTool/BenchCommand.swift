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

    /// Parses and runs `arguments`; returns the process exit code. Errors print one line
    /// (`byst-bench: error: …`) to stderr, as `byst`'s do.
    static func run(_ arguments: [String]) async -> Int32 {
        ProcessHardening.protectSecrets()
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is CleanExit {
                exit(withError: error)
            }
            let text = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let hint = error is BenchError ? "" : " (see: byst-bench --help)"
            var bytes = Array("byst-bench: error: \(text)\(code == .validationFailure ? hint : "")\n".utf8)
            _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
            return code.rawValue
        }
    }
}

/// A failure the command reports as one line and exit status 1.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
