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
    @Flag(help: "Only the node and its totals (peers up, links, bytes, failing peers): for a hub with many peers.")
    var summary = false
    @Option(help: "Only this peer (its [[peer]] name).") var peer: String?

    func validate() throws {
        if summary, peer != nil { throw ValidationError("--summary and --peer exclude each other") }
        if let peer, peer.isEmpty || peer.contains(where: \.isWhitespace) {
            throw ValidationError("--peer takes a peer name from the node's config, got '\(peer)'")
        }
    }

    private var view: StatusView { summary ? .summary : peer.map { .peer($0) } ?? .full }

    func run() throws {
        let target = try node.target { list in
            if json { throw CLIError("several nodes are running; choose one with -n NAME, -c FILE or --socket PATH:\n\(list)") }
            print("several nodes are running; choose one with -n NAME (byst@NAME), -c FILE or --socket PATH:\n\(list)")
        }
        guard let target else { return }
        let reply = try ControlClient.request(view.command, socketPath: target.socket)
        if let refusal = try? JSONDecoder().decode([String: String].self, from: Data(reply.utf8)), let error = refusal["error"] {
            throw CLIError("\(target.socket): \(error)")
        }
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
        writeAll(Array(text.utf8), to: STDOUT_FILENO)
    }

    /// `  hub  -n hub  /run/byst/hub.sock  up 3 hours, 1 minute, 2 peers, 8 links up`
    static func describe(_ target: StatusTarget) -> String {
        let instance = target.config.map { " -n " + (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? ""
        var line = "  \(target.name)\(instance)  \(target.socket)"
        if let reply = try? ControlClient.request(StatusView.summary.command, socketPath: target.socket),
           let report = try? JSONDecoder().decode(StatusReport.self, from: Data(reply.utf8)), let summary = report.summary {
            line += "  up \(StatusFormat.duration(seconds: report.uptime_seconds)), \(summary.peers) peers, \(summary.links) links up"
        }
        return line
    }
}
