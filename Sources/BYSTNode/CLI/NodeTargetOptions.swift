import ArgumentParser
import Foundation

/// Which running node a command talks to (`byst status`, `byst reload`): `--socket`, `-c FILE`,
/// `-n NAME` (`byst@NAME`), else the one running on this host.
struct NodeTargetOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Config file (for its control socket path).")
    var config: String?
    @Option(name: [.short, .customLong("name")], help: "The node byst@NAME runs (/etc/byst/NAME.toml).")
    var name: String?
    @Option(help: "Control socket path (overrides the config).") var socket: String?

    func validate() throws {
        if [config, name, socket].compactMap({ $0 }).count > 1 {
            throw ValidationError("give at most one of -c/--config, -n/--name and --socket")
        }
    }

    /// The node to ask; with none named and several running, `several` gets the list of them
    /// (one line each) and decides: throw, or print and return nil.
    func target(several: (String) throws -> Void) throws -> StatusTarget? {
        if let socket { return StatusTarget(name: "", config: nil, socket: socket) }
        if let config { return try StatusTarget.fromConfig(config) }
        if let name { return try StatusTarget.named(name) }
        let running = StatusTarget.candidates().filter { ControlClient.isListening($0.socket) }
        switch running.count {
        case 0:
            throw CLIError("no running node found (no control socket answers among /etc/byst/*.toml and /run/byst/*.sock): "
                + "is `byst up` running? Name it with -c FILE, -n NAME or --socket PATH")
        case 1:
            return running[0]
        default:
            try several(running.map(StatusCommand.describe).joined(separator: "\n"))
            return nil
        }
    }
}
