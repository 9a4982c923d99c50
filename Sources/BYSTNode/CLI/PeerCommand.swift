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
            if let endpoint {
                switch Endpoint.parse(endpoint) {
                case .success(let parsed): peer.endpoint = parsed
                case .failure(.invalid(let expected)):
                    throw CLIError("--endpoint must be \(expected), got \(endpoint.configQuoted)".escapingControlCharacters())
                case .failure(.notSupportedYet(let feature)):
                    throw CLIError("--endpoint \(endpoint.configQuoted): \(feature) is not supported yet".escapingControlCharacters())
                }
            }
            if let allowedIPs {
                peer.allowedIPs = try Self.parseAllowedIPs(allowedIPs)
            }
            // The loader checks the names when the edited file is read back.
            peer.gateways = gateways.map(Self.names) ?? []
            peer.ports = ports.map(Self.names) ?? []
            let path = config.path
            let updated: NodeConfig
            do throws(ConfigError) {
                updated = try ConfigEditor.update(path: path) { (text: String) throws(ConfigError) -> String in
                    try ConfigEditor.addingPeer(peer, to: text, file: path)
                }
            } catch {
                if case .duplicate(what: "peer name", _, _) = error.reason {
                    throw CLIError("a peer named '\(name)' already exists in \(path) (remove it first with: byst peer rm \(name))"
                        .escapingControlCharacters())
                }
                throw CLIError(error.description)
            }
            print("added peer '\(name)' to \(path)")
            // The key may legitimately come later; say so now rather than at `byst up`.
            if let store = try? KeyStore.load(path: updated.keyStore), store.entry(named: key) == nil {
                writeStandardError("byst: warning: no key named '\(key)' in \(store.path) yet; "
                    + "create it with: byst key gen \(key) (or byst key import \(key))\n")
            }
        }

        /// `10.0.2.0/24,fd00:2::/64` → the prefixes in network form, as the loader stores them
        /// (duplicates and prefixes routed to another peer are left to the loader).
        static func names(_ list: String) -> [String] {
            list.split(separator: ",").map { String($0).trimmingASCIIWhitespace() }
        }

        static func parseAllowedIPs(_ list: String) throws -> [IPPrefix] {
            var prefixes: [IPPrefix] = []
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                let text = String(item.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
                switch IPPrefix.parseAllowedIP(text) {
                case .success(let prefix): prefixes.append(prefix)
                case .failure(.invalid):
                    throw CLIError("--allowed-ips must be a comma-separated list of IP prefixes like 10.0.2.0/24,fd00:2::/64, got \(text.configQuoted)"
                        .escapingControlCharacters())
                case .failure(.notSupportedYet(let feature)):
                    throw CLIError("--allowed-ips \(text.configQuoted): \(feature) is not supported yet".escapingControlCharacters())
                }
            }
            return prefixes
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
