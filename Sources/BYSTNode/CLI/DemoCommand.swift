import ArgumentParser
import Foundation
import Glibc

/// `byst demo`: runs deploy/demo.sh (two namespaces, TUN, ping, iperf3, status) with this
/// binary. The script is looked up beside the binary's checkout or install.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Two sites in network namespaces joined by BYST: ping, iperf3 and status (root).")

    func run() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        guard let script = Self.findScript(from: executable) else {
            throw CLIError("cannot find deploy/demo.sh beside \(executable.path); set BYST_DEMO_SCRIPT")
        }
        setenv("BYST_BINARY", executable.path, 1)
        // Replace this process with the script, with every signal unblocked: runtime threads
        // block some, and a blocked SIGTERM would be inherited by the script's daemons,
        // which then could not be stopped.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("bash"), strdup(script), nil]
        execv("/bin/bash", arguments)
        throw CLIError("cannot run /bin/bash \(script): \(String(cString: strerror(errno)))")
    }

    static func findScript(from executable: URL) -> String? {
        if let path = ProcessInfo.processInfo.environment["BYST_DEMO_SCRIPT"] { return path }
        var directory = executable.deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = directory.appendingPathComponent("deploy/demo.sh").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        let installed = "/usr/share/byst/demo.sh"
        return FileManager.default.fileExists(atPath: installed) ? installed : nil
    }
}
