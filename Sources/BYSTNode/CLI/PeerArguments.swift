import BYSTProto

/// Command-line values of a `[[peer]]` and adding it to a config file: shared by
/// `byst peer add` and `byst invite`.
enum PeerArguments {
    /// `--endpoint`: `byst://host:port`, `http(s)://…` or `port:NAME`.
    static func endpoint(_ text: String) throws -> Endpoint {
        switch Endpoint.parse(text) {
        case .success(let parsed): return parsed
        case .failure(.invalid(let expected)):
            throw CLIError("--endpoint must be \(expected), got \(text.configQuoted)".escapingControlCharacters())
        case .failure(.notSupportedYet(let feature)):
            throw CLIError("--endpoint \(text.configQuoted): \(feature) is not supported yet".escapingControlCharacters())
        }
    }

    /// `a,b` → `["a", "b"]`, spaces around each removed (the loader checks the names).
    static func names(_ list: String) -> [String] {
        list.split(separator: ",").map { String($0).trimmingASCIIWhitespace() }
    }

    /// `10.0.2.0/24,fd00:2::/64` → the prefixes in network form, as the loader stores them
    /// (duplicates and prefixes routed to another peer are left to the loader). `option`
    /// names the option in errors.
    static func prefixes(_ list: String, option: String = "--allowed-ips") throws -> [IPPrefix] {
        var prefixes: [IPPrefix] = []
        for item in list.split(separator: ",", omittingEmptySubsequences: false) {
            let text = String(item.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            switch IPPrefix.parseAllowedIP(text) {
            case .success(let prefix): prefixes.append(prefix)
            case .failure(.invalid):
                throw CLIError("\(option) must be a comma-separated list of IP prefixes like 10.0.2.0/24,fd00:2::/64, got \(text.configQuoted)"
                    .escapingControlCharacters())
            case .failure(.notSupportedYet(let feature)):
                throw CLIError("\(option) \(text.configQuoted): \(feature) is not supported yet".escapingControlCharacters())
            }
        }
        return prefixes
    }

    /// `--allow-targets 127.0.0.1:5432,db.internal:*`.
    static func targets(_ list: String) throws -> [TargetRule] {
        var rules: [TargetRule] = []
        for text in names(list) {
            guard case .success(let rule) = TargetRule.parse(text) else {
                throw CLIError("--allow-targets must be a comma-separated list of host:port where host or port may be *, got \(text.configQuoted)"
                    .escapingControlCharacters())
            }
            rules.append(rule)
        }
        return rules
    }

    /// Appends `peer` to the config file at `path` (`ConfigEditor.addingPeer`), which is
    /// validated before it is written; the config as written. `dryRun`: everything but the write.
    @discardableResult
    static func add(_ peer: PeerConfig, toConfig path: String, dryRun: Bool = false) throws -> NodeConfig {
        let edit = { (text: String) throws(ConfigError) -> String in try ConfigEditor.addingPeer(peer, to: text, file: path) }
        do throws(ConfigError) {
            if dryRun { return try NodeConfig.parse(edit(readConfigText(path: path)), file: path) }
            return try ConfigEditor.update(path: path, edit)
        } catch {
            if case .duplicate(what: "peer name", _, _) = error.reason {
                throw CLIError("a peer named '\(peer.name)' already exists in \(path) (remove it first with: byst peer rm \(peer.name))"
                    .escapingControlCharacters())
            }
            throw CLIError(error.description)
        }
    }
}
