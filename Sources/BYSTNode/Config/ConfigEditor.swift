import Glibc

/// Edits of the config *text* for `byst peer add|rm`: every line they do not add or remove
/// stays byte for byte, comments included. Each edit parses the document before and after,
/// so it never produces a file the loader would refuse.
///
/// Which comments go with a `[[peer]]` block (`ownedLines`):
///
///     # Lyon office            ← directly above the header, after a blank line: the block's
///     [[peer]]
///     name = "branch-1"
///     # links = 8              ← inside or directly below the body: the block's
///
///     # Port forwards          ← after a blank line: belongs to what follows, kept
///     [[forward]]
///
/// **Invariants**
/// - An edit never returns (or `update` never writes) text that `NodeConfig.parse` refuses.
/// - Lines outside the added or removed block are kept byte for byte, line endings included.
public enum ConfigEditor {
    /// `text` with a `[[peer]]` block for `peer` after the last `[[peer]]` block (at the end
    /// of the file if there is none). Throws if `text` is not a valid config, if a peer has
    /// the same name, or if the new block is invalid (then without a line number: the error
    /// is in the block, not in the file on disk).
    public static func addingPeer(_ peer: PeerConfig, to text: String, file: String) throws(ConfigError) -> String {
        let config = try NodeConfig.parse(text, file: file)
        let source = ConfigSource(text)
        guard source.blocks.filter({ $0.name == "peer" && $0.isArray }).count == config.peers.count else { throw notAllHeaders(file) }
        if let index = config.peers.firstIndex(where: { $0.name == peer.name }) {
            let line = source.block("peer", index: index)?.keyLines["name"]
            throw ConfigError(file: file, section: "[[peer]] \(peer.name.configQuoted)",
                              reason: .duplicate(what: "peer name", value: peer.name.configQuoted, firstLine: line))
        }
        let newline = text.contains("\r\n") ? "\r" : ""
        var lines = source.lines.map(String.init)
        var block = render(peer).map { $0 + newline }
        let insertAt: Int
        if let last = source.blocks.lastIndex(where: { $0.name == "peer" && $0.isArray }) {
            insertAt = ownedLines(of: last, in: source).upperBound
            block.insert(newline, at: 0)
            if insertAt < lines.count, source.kinds[insertAt] != .blank { block.append(newline) }
        } else if lines.last == "" {
            // Before the empty "line" after the final newline, with one blank line as separator.
            insertAt = lines.count - 1
            if insertAt > 0, source.kinds[insertAt - 1] != .blank { block.insert(newline, at: 0) }
        } else {
            insertAt = lines.count
            block.insert(newline, at: 0)
            block.append("")
        }
        lines.insert(contentsOf: block, at: insertAt)
        let edited = lines.joined(separator: "\n")
        do throws(ConfigError) {
            _ = try NodeConfig.parse(edited, file: file)
        } catch {
            var error = error
            let added = (insertAt + 1)...(insertAt + block.count)
            if let line = error.line, added.contains(line) { error.line = nil; error.column = nil }
            throw error
        }
        return edited
    }

    /// `text` without the `[[peer]]` block named `name` and the comments that belong to it.
    public static func removingPeer(named name: String, from text: String, file: String) throws(ConfigError) -> String {
        let config = try NodeConfig.parse(text, file: file)
        guard let index = config.peers.firstIndex(where: { $0.name == name }) else {
            throw ConfigError(file: file, reason: .peerNotFound(name))
        }
        if let forward = config.forwards.first(where: { $0.peer == name }) {
            throw ConfigError(file: file, reason: .notEditable(
                "peer \(name.configQuoted) is used by the [[forward]] listening on \(forward.listen); remove that forward first"))
        }
        let source = ConfigSource(text)
        let peerBlocks = source.blocks.indices.filter { source.blocks[$0].name == "peer" && source.blocks[$0].isArray }
        guard peerBlocks.count == config.peers.count else { throw notAllHeaders(file) }
        var removed = ownedLines(of: peerBlocks[index], in: source)
        // Do not leave two blank lines where the block was.
        let blankBefore = removed.lowerBound == 0 || source.kinds[removed.lowerBound - 1] == .blank
        if blankBefore, removed.upperBound < source.lines.count, source.kinds[removed.upperBound] == .blank {
            removed = removed.lowerBound..<(removed.upperBound + 1)
        }
        var lines = source.lines.map(String.init)
        lines.removeSubrange(removed)
        let edited = lines.joined(separator: "\n")
        _ = try NodeConfig.parse(edited, file: file)
        return edited
    }

    /// Reads `path`, applies `edit`, checks the result with `NodeConfig.parse` and replaces
    /// the file atomically (through a symlink, to its target), keeping its permission bits.
    @discardableResult
    public static func update(path: String, _ edit: (String) throws(ConfigError) -> String) throws(ConfigError) -> NodeConfig {
        let text = try readConfigText(path: path)
        let edited = try edit(text)
        let config = try NodeConfig.parse(edited, file: path)
        let target = resolvingSymlinks(path)
        do throws(AtomicFile.Failure) {
            let mode = try AtomicFile.mode(target) ?? 0o600
            try AtomicFile.write(Array(edited.utf8), to: target, mode: mode)
        } catch {
            throw ConfigError(file: path, reason: .unwritable(operation: error.operation, detail: error.reason))
        }
        return config
    }

    /// The lines of a new `[[peer]]` block; keys at their defaults are left out.
    static func render(_ peer: PeerConfig) -> [String] {
        var lines = ["[[peer]]", "name = \(peer.name.tomlQuoted)", "key = \(peer.key.tomlQuoted)"]
        if let endpoint = peer.endpoint { lines.append("endpoint = \(endpoint.description.tomlQuoted)") }
        if peer.links != PeerConfig.defaultLinks { lines.append("links = \(peer.links)") }
        if !peer.allowTargets.isEmpty {
            lines.append("allow_targets = [\(peer.allowTargets.map(\.description.tomlQuoted).joined(separator: ", "))]")
        }
        if !peer.allowedIPs.isEmpty {
            lines.append("allowed_ips = [\(peer.allowedIPs.map(\.description.tomlQuoted).joined(separator: ", "))]")
        }
        for (key, names) in [("gateways", peer.gateways), ("ports", peer.ports)] where !names.isEmpty {
            lines.append("\(key) = [\(names.map(\.tomlQuoted).joined(separator: ", "))]")
        }
        if let haPort = peer.haPort { lines.append("ha_port = \(haPort.tomlQuoted)") }
        return lines
    }

    /// The 0-based line range of a block with its comments (see the type's doc comment).
    static func ownedLines(of blockIndex: Int, in source: ConfigSource) -> Range<Int> {
        let block = source.blocks[blockIndex]
        let header = block.headerIndex
        var bodyEnd = header
        for index in (header + 1)..<block.endIndex {
            switch source.kinds[index] {
            case .keyValue, .continuation: bodyEnd = index
            default: break
            }
        }
        var end = bodyEnd + 1
        while end < block.endIndex, source.kinds[end] == .comment { end += 1 }
        var start = header
        while start > 0, source.kinds[start - 1] == .comment { start -= 1 }
        // Comments glued to the previous block's body (no blank line between) are its own,
        // and comments at the very top of the file describe the file.
        if start == 0 || source.kinds[start - 1] != .blank { start = header }
        return start..<end
    }

    /// Peers written as an inline array (`peer = [{ … }]`) have no block to cut or follow.
    private static func notAllHeaders(_ file: String) -> ConfigError {
        ConfigError(file: file, reason: .notEditable("peers are not all written as [[peer]] tables; edit the file by hand"))
    }

    private static func resolvingSymlinks(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension String {
    /// A TOML basic string: `"` and `\` escaped, control characters as `\uXXXX`.
    var tomlQuoted: String {
        var text = "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case _ where scalar.properties.generalCategory == .control:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                text += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }
}
