import ArgumentParser
import Foundation

/// `byst reload`: the running node re-reads its config and keys (as on SIGHUP) and answers
/// with what changed, or why it refused (then nothing changed).
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Make the running node re-read its config file and key store.")

    @Option(name: [.short, .customLong("config")], help: "Config file (for its control socket path).")
    var config = "/etc/byst/byst.toml"
    @Option(help: "Control socket path (overrides the config).") var socket: String?

    func run() throws {
        let path: String
        if let socket {
            path = socket
        } else {
            do { path = try NodeConfig.load(path: config).controlSocket } catch { throw CLIError(error.description) }
        }
        let reply = try ControlClient.request("reload", socketPath: path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard reply.hasPrefix("ok: ") else {
            throw CLIError(reply.hasPrefix("error: ") ? "reload refused: " + reply.dropFirst("error: ".count) : "unexpected reply: \(reply)")
        }
        print("reloaded: " + reply.dropFirst("ok: ".count))
    }
}
