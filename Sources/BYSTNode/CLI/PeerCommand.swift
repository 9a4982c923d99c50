import ArgumentParser
import BYSTProto

/// The config file option shared by the commands that read or edit it.
struct ConfigFileOptions: ParsableArguments {
    static let defaultPath = "/etc/byst/byst.toml"

    @Option(name: [.customShort("c"), .customLong("config")], help: "Node config file.")
    var path: String = ConfigFileOptions.defaultPath

    func load() throws -> NodeConfig {
        do throws(ConfigError) { return try NodeConfig.load(path: path) } catch { throw CLIError(error.description) }
    }

    /// Applies `edit` to the file's text; validates and writes it (`ConfigEditor.update`).
    func update(_ edit: (String) throws(ConfigError) -> String) throws -> NodeConfig {
        do throws(ConfigError) { return try ConfigEditor.update(path: path, edit) } catch { throw CLIError(error.description) }
    }
}

/// `byst peer add|list|rm`: edits the `[[peer]]` tables of the config file, keeping its
/// comments and layout (`ConfigEditor`).
struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Add, list and remove peers in the node's config file.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a [[peer]] to the config file.")
        @Argument(help: "Name of the peer: 1-63 letters, digits, '.', '_' or '-'.") var name: String
        @Option(help: "Name of the peer's key in the key store (see: byst key gen / import).") var key: String
        @Option(help: "Where to dial the peer: byst://host:port, http(s)://…, or port:NAME. Leave out for a peer that only dials us.")
        var endpoint: String?
        @Option(help: "With --endpoint port:NAME: the gateways that may serve it, comma-separated (their names at the registry).")
        var gateways: String?
        @Option(help: "On a node running `byst registry serve`: the HA ports this peer may own, comma-separated.")
        var ports: String?
        @Option(help: "Parallel links to open to the peer, 1…64 (default \(PeerConfig.defaultLinks)).") var links: Int?
        @Option(name: .customLong("allowed-ips"),
                help: "IP prefixes routed to the peer through TUN, comma-separated: 10.0.2.0/24,fd00:2::/64.")
        var allowedIPs: String?
        @OptionGroup var config: ConfigFileOptions

        func run() throws {
            var peer = PeerConfig(name: name, key: key, links: links ?? PeerConfig.defaultLinks)
            peer.endpoint = try endpoint.map(PeerArguments.endpoint)
            peer.allowedIPs = try allowedIPs.map { try PeerArguments.prefixes($0) } ?? []
            // The loader checks the names when the edited file is read back.
            peer.gateways = gateways.map(PeerArguments.names) ?? []
            peer.ports = ports.map(PeerArguments.names) ?? []
            let updated = try PeerArguments.add(peer, toConfig: config.path)
            print("added peer '\(name)' to \(config.path)")
            // The key may legitimately come later; say so now rather than at `byst up`.
            if let store = try? KeyStore.load(path: updated.keyStore), store.entry(named: key) == nil {
                writeStandardError("byst: warning: no key named '\(key)' in \(store.path) yet; "
                    + "create it with: byst key gen \(key) (or byst key import \(key))\n")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the peers of the config file.")
        @OptionGroup var config: ConfigFileOptions

        func run() throws {
            let peers = try config.load().peers
            let rows = [["NAME", "ENDPOINT", "LINKS", "KEY"]]
                + peers.map { [$0.name, $0.endpoint?.description ?? "-", "\($0.links)", $0.key] }
            var widths = [Int](repeating: 0, count: 4)
            for row in rows {
                for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
            }
            for row in rows {
                let cells = row.enumerated().map { column, cell in column == row.count - 1 ? cell : cell.padding(widths[column]) }
                print(cells.joined(separator: "  "))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a [[peer]] from the config file.")
        @Argument var name: String
        @OptionGroup var config: ConfigFileOptions

        func run() throws {
            let path = config.path
            _ = try config.update { (text: String) throws(ConfigError) -> String in
                try ConfigEditor.removingPeer(named: name, from: text, file: path)
            }
            print("removed peer '\(name)' from \(path)")
        }
    }
}
