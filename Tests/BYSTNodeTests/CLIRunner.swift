import Foundation

/// What one run of the `byst` binary did.
struct CLIRun {
    let status: Int32
    let stdout: String
    let stderr: String
}

struct CLIMissing: Error, CustomStringConvertible {
    let path: String
    var description: String { "byst binary not found at \(path): run `swift build` first or set BYST_BINARY" }
}

/// The built `byst` binary: `$BYST_BINARY`, else the one next to the test bundle.
func bystBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["BYST_BINARY"] { return path }
    // The test bundle sits next to the products in .build/<config>/.
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
    let path = directory.appendingPathComponent("byst").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw CLIMissing(path: path)
    }
    return path
}

/// Runs `byst arguments` as an operator would, feeding `stdin` if given. `BYST_KEY_STORE` is
/// removed from the environment so a developer's setting cannot leak into a test.
/// `executable` runs another program (say, setpriv) the same way.
func byst(_ arguments: [String], stdin: String? = nil, executable: String? = nil) throws -> CLIRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try executable ?? bystBinary())
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "BYST_KEY_STORE")
    process.environment = environment
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CLIRun(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                  stderr: String(decoding: stderrData, as: UTF8.self))
}
