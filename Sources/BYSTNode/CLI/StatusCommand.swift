import ArgumentParser
import Foundation
import Glibc

/// `byst status`: asks a running node over its control socket (docs/OPERATIONS.md, "Status").
/// Which node: `--socket`, `-c FILE`, `-n NAME` (`byst@NAME`), else the one running here;
/// with several running, it lists them.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running node's peers: latest handshake, transfer, rates, errors, links (RTT, bytes).",
        discussion: """
            Without -c, -n or --socket it asks the node running on this host (configs in /etc/byst, \
            sockets in /run/byst); when several run, it lists them.
            """)

    @OptionGroup var node: NodeTargetOptions
    @Flag(help: "Print the machine-readable JSON.") var json = false

    func run() throws {
        let target = try node.target { list in
            if json { throw CLIError("several nodes are running; choose one with -n NAME, -c FILE or --socket PATH:\n\(list)") }
            print("several nodes are running; choose one with -n NAME (byst@NAME), -c FILE or --socket PATH:\n\(list)")
        }
        guard let target else { return }
        let reply = try ControlClient.request("status", socketPath: target.socket)
        if json { return Self.write(reply.hasSuffix("\n") ? reply : reply + "\n") }
        guard let report = try? JSONDecoder().decode(StatusReport.self, from: Data(reply.utf8)) else {
            throw CLIError("unexpected reply from \(target.socket)")
        }
        Self.write(StatusText.render(report))
    }

    /// The whole answer in one write: `print` goes out in 4 KiB pieces, the last at exit, so a
    /// reader that stops at its first match (`awk '… { print; exit }'`) could make the last
    /// piece fail with SIGPIPE, and a script with `pipefail` fail with it.
    static func write(_ text: String) {
        writeAll(text, to: STDOUT_FILENO)
    }

    /// `  hub  -n hub  /run/byst/hub.sock  up 3 hours, 1 minute, 2 peers, 8 links up`
    static func describe(_ target: StatusTarget) -> String {
        let instance = target.config.map { " -n " + (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? ""
        var line = "  \(target.name)\(instance)  \(target.socket)"
        if let reply = try? ControlClient.request("status", socketPath: target.socket),
           let report = try? JSONDecoder().decode(StatusReport.self, from: Data(reply.utf8)) {
            let links = report.peers.flatMap(\.sessions).reduce(0) { $0 + $1.links.count }
            line += "  up \(StatusFormat.duration(seconds: report.uptime_seconds)), \(report.peers.count) peers, \(links) links up"
        }
        return line
    }
}
