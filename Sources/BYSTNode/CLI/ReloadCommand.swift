import ArgumentParser
import Foundation

/// `byst reload`: the running node re-reads its config and keys (as on SIGHUP) and answers
/// with what changed, or why it refused (then nothing changed).
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Make the running node re-read its config file and key store.")

    @OptionGroup var node: NodeTargetOptions

    func run() throws {
        let target = try node.target { list in
            throw CLIError("several nodes are running; choose one with -n NAME, -c FILE or --socket PATH:\n\(list)")
        }
        guard let path = target?.socket else { return }
        let reply = try ControlClient.request("reload", socketPath: path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard reply.hasPrefix("ok: ") else {
            throw CLIError(reply.hasPrefix("error: ") ? "reload refused: " + reply.dropFirst("error: ".count) : "unexpected reply: \(reply)")
        }
        print("reloaded: " + reply.dropFirst("ok: ".count))
    }
}
