import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// The control socket's trust boundary: only its owner (root for a daemon) may talk to the
/// node. Another local user who can reach the directory is refused by the socket's mode.
@Suite(.serialized) struct ControlSocketAccessTests {
    @Test func anotherLocalUserCannotUseTheControlSocket() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The directory is open to everyone: only the socket's own mode may keep others out.
        #expect(chmod(dir, 0o755) == 0)
        let node = try await TestCluster.start("""
            [node]
            name = "hub"
            \(TestCluster.nodeFiles("hub", dir: dir))
            """, directory: dir, name: "hub", keys: try TestCluster.keyStore(dir, "hub", []), capture: LogCapture())
        let socket = "\(dir)/hub.sock"
        var info = stat()
        #expect(stat(socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(info.st_uid == geteuid())
        #expect(try byst(["status", "--json", "--socket", socket]).status == 0, "the owner is refused")
        // As root (CI): the same command as user nobody, with a copy of the binary nobody can
        // run (wherever the checkout lies), so only the socket can refuse it.
        var asNobody: (version: CLIRun, status: CLIRun)?
        if geteuid() == 0 {
            let binary = "\(dir)/byst"
            try FileManager.default.copyItem(atPath: try bystBinary(), toPath: binary)
            #expect(chmod(binary, 0o755) == 0)
            let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", binary]
            asNobody = (try run("/usr/bin/setpriv", nobody + ["--version"]),
                        try run("/usr/bin/setpriv", nobody + ["status", "--json", "--socket", socket]))
        }
        try await node.node.shutdown()
        guard let asNobody else { return }
        #expect(asNobody.version.status == 0, "nobody cannot run byst at all: \(asNobody.version.stderr)")
        #expect(asNobody.status.status != 0, "user nobody used the control socket: \(asNobody.status.stdout)")
        #expect(asNobody.status.stderr.contains("Permission denied"), "\(asNobody.status.stderr)")
        #expect(!asNobody.status.stdout.contains("\"node\""))
    }

    private func run(_ path: String, _ arguments: [String]) throws -> CLIRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIRun(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}
