import Foundation

/// A node `byst status` can ask: its name, its config file (if known) and control socket.
struct StatusTarget: Equatable {
    var name: String
    var config: String?
    var socket: String

    /// Where the packaged units keep configs (`byst@NAME` runs `byst up -c /etc/byst/NAME.toml`)
    /// and where default control sockets live (`/run/byst/<node name>.sock`).
    static let configDirectory = "/etc/byst"
    static let runDirectory = "/run/byst"

    /// `-n NAME`: the node `byst@NAME` runs, through its config's control socket; without the
    /// config, the default socket of a node named NAME.
    static func named(_ name: String, configDirectory: String = configDirectory, runDirectory: String = runDirectory) throws -> StatusTarget {
        guard !name.isEmpty, !name.contains("/") else { throw CLIError("-n takes a node name (byst@NAME), got '\(name)'") }
        let config = "\(configDirectory)/\(name).toml"
        if FileManager.default.fileExists(atPath: config) { return try fromConfig(config) }
        let socket = "\(runDirectory)/\(name).sock"
        guard FileManager.default.fileExists(atPath: socket) else {
            throw CLIError("no node '\(name)': neither \(config) (what byst@\(name) runs) nor \(socket) exists")
        }
        return StatusTarget(name: name, config: nil, socket: socket)
    }

    /// `-c FILE`: the control socket that config gives its node.
    static func fromConfig(_ path: String) throws -> StatusTarget {
        let config: NodeConfig
        do { config = try NodeConfig.load(path: path) } catch { throw CLIError(error.description) }
        return StatusTarget(name: config.name, config: path, socket: config.controlSocket)
    }

    /// Nodes that may be running here: every `NAME.toml` in `configDirectory` that loads, and
    /// every other socket in `runDirectory` (a node started with `-c` elsewhere), by name.
    static func candidates(configDirectory: String = configDirectory, runDirectory: String = runDirectory) -> [StatusTarget] {
        let files = FileManager.default
        let configs = ((try? files.contentsOfDirectory(atPath: configDirectory)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
        let fromConfigs = configs.compactMap { try? fromConfig("\(configDirectory)/\($0)") }
        let sockets = ((try? files.contentsOfDirectory(atPath: runDirectory)) ?? []).filter { $0.hasSuffix(".sock") }.sorted()
        return merge(fromConfigs, sockets: sockets.map { "\(runDirectory)/\($0)" })
    }

    /// The configs' targets, then each socket no config names (named after its file).
    static func merge(_ configured: [StatusTarget], sockets: [String]) -> [StatusTarget] {
        var targets: [StatusTarget] = []
        for target in configured where !targets.contains(where: { $0.socket == target.socket }) { targets.append(target) }
        for socket in sockets where !targets.contains(where: { $0.socket == socket }) {
            let file = socket.split(separator: "/").last.map(String.init) ?? socket
            targets.append(StatusTarget(name: String(file.dropLast(".sock".count)), config: nil, socket: socket))
        }
        return targets
    }
}
