import ArgumentParser

/// How `byst` and `byst-bench` run: secrets protected first, then the command; an error
/// prints one line (`NAME: error: …`) to stderr and gives the exit code, help and version
/// print in full. `isOwnError` marks errors whose text is complete (no "see --help" hint).
package enum CommandLineRunner {
    package static func run<Root: ParsableCommand>(_ root: Root.Type, _ arguments: [String], name: String,
                                                   isOwnError: (any Error) -> Bool) async -> Int32 {
        ProcessHardening.protectSecrets()
        do {
            var command = try Root.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            let code = Root.exitCode(for: error)
            if code == .success || error is CleanExit {
                Root.exit(withError: error)
            }
            let text = Root.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let hint = isOwnError(error) ? "" : " (see: \(name) --help)"
            writeStandardError("\(name): error: \(text)\(code == .validationFailure ? hint : "")\n")
            return code.rawValue
        }
    }
}
