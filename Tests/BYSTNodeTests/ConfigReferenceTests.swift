import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// `ConfigSchema` is the list of keys: the loader accepts exactly those, reads every one of
/// them, and docs/OPERATIONS.md documents exactly those, table by table.
@Suite struct ConfigReferenceTests {
    static let operations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/OPERATIONS.md")

    /// The cells of each row of the first table under the heading that names `header`
    /// (`### \`[node]\` (required)`, `#### \`uplinks\`: …`), header and separator rows included;
    /// nil without such a heading.
    static func tableRows(_ header: String, in text: String) -> [[String]]? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let heading = lines.firstIndex(where: { $0.hasPrefix("#") && $0.drop { $0 == "#" }.hasPrefix(" `\(header)`") }) else {
            return nil
        }
        var rows: [[String]] = []
        for line in lines[(heading + 1)...] {
            if line.hasPrefix("#") { break }
            guard line.hasPrefix("|") else {
                if !rows.isEmpty { break }
                continue
            }
            rows.append(line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return rows
    }

    /// The key names in the first column of that table: "`a`, `b`" gives both.
    static func documentedKeys(_ header: String, in text: String) -> [String]? {
        tableRows(header, in: text).map { rows in
            rows.filter { $0.count > 2 && $0[1].contains("`") }.flatMap { row in
                row[1].split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            }
        }
    }

    @Test func operationsDocumentsEveryKeyOfEveryTableAndNoOther() throws {
        let text = try String(contentsOf: Self.operations, encoding: .utf8)
        for table in ConfigSchema.tables {
            let documented = try #require(Self.documentedKeys(table.header, in: text), "no ### `\(table.header)` section")
            #expect(Set(documented) == Set(table.keyNames),
                    "\(table.header): documented but not accepted \(Set(documented).subtracting(table.keyNames).sorted()), accepted but not documented \(Set(table.keyNames).subtracting(documented).sorted())")
            #expect(documented.count == Set(documented).count, "\(table.header): a key documented twice")
        }
        // The keys of each `[[peer]] uplinks` entry, under "#### `uplinks`".
        let uplinkKeys = try #require(Self.documentedKeys("uplinks", in: text))
        #expect(Set(uplinkKeys) == Set(ConfigSchema.uplink.keyNames), "uplinks: \(uplinkKeys)")
    }

    /// The cell of `column` (0-based, after the key) in `key`'s row of `header`'s table.
    static func documentedCell(_ header: String, key: String, column: Int, in text: String) -> String? {
        tableRows(header, in: text)?.first { row in
            row.count > column + 2 && row[1].split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "`\(key)`" }
        }?[column + 2]
    }

    /// What the code does when a key is left out, written as OPERATIONS.md writes defaults.
    static var codeDefaults: [(header: String, key: String, value: String)] {
        let node = NodeConfig(name: "n")
        let tun = TunConfig(name: TunConfig.defaultName, addresses: [])
        let peer = PeerConfig(name: "p", key: "p")
        let limits = LimitsConfig()
        var rows: [(String, String, String)] = [
            ("[node]", "listen", "[]"), ("[node]", "http_listen", "[]"), ("[node]", "https_listen", "[]"),
            ("[node]", "metrics_listen", "[]"),
            ("[node]", "http_path", node.http.path.configQuoted), ("[node]", "key_store", node.keyStore.configQuoted),
            ("[node]", "session_linger", node.sessionLinger.configText), ("[node]", "keepalive_interval", node.keepaliveInterval.configText),
            ("[node]", "dead_link_timeout", node.deadLinkTimeout.configText),
            ("[node]", "max_record_payload", "\(node.maxRecordPayload)"), ("[node]", "compression_level", "\(node.compressionLevel)"),
            ("[node]", "registry_lease", RegistryConfig.defaultLease.configText),
            ("[tun]", "name", tun.name.configQuoted), ("[tun]", "mtu", "\(tun.mtu)"), ("[tun]", "offload", "\(tun.offload)"),
            ("[tun]", "data_plane", "\(tun.dataPlane)"),
            ("[[peer]]", "links", "\(peer.links)"), ("[[peer]]", "allow_targets", "[]"), ("[[peer]]", "allowed_ips", "[]"),
            ("[[peer]]", "http_mode", peer.http.mode.rawValue.configQuoted), ("[[peer]]", "compression", peer.compression.rawValue.configQuoted),
            ("[[peer]]", "ports", "[]"),
        ]
        let counts: [(String, Int)] = [
            ("links_per_peer", limits.linksPerPeer), ("sessions_per_peer", limits.sessionsPerPeer),
            ("pending_handshakes", limits.pendingHandshakes), ("handshake_rate", limits.handshakeRate),
            ("handshake_burst", limits.handshakeBurst), ("handshake_sources", limits.handshakeSources),
            ("accept_rate", limits.acceptRate), ("accept_burst", limits.acceptBurst), ("accept_backlog", limits.acceptBacklog),
            ("streams_per_session", limits.streamsPerSession), ("http_max_head", limits.httpHeadBytes),
            ("registry_ports", limits.registryPorts), ("registry_watches", limits.registryWatches),
        ]
        rows += counts.map { ("[limits]", $0.0, "\($0.1)") }
        rows += [("[limits]", "handshake_timeout", limits.handshakeTimeout.configText),
                 ("[limits]", "accept_loop_lag", limits.acceptLoopLag.configText.configQuoted),
                 ("[limits]", "http_idle_timeout", limits.httpIdleTimeout.configText.configQuoted),
                 ("[limits]", "stream_buffer", ConfigKey.sizeText(limits.streamBuffer).configQuoted),
                 ("[limits]", "session_buffer", ConfigKey.sizeText(limits.sessionBuffer).configQuoted)]
        return rows.map { (header: $0.0, key: $0.1, value: $0.2) }
    }

    /// The defaults OPERATIONS.md states are the code's.
    @Test func documentedDefaultsAreTheCodes() throws {
        let text = try String(contentsOf: Self.operations, encoding: .utf8)
        for (header, key, value) in Self.codeDefaults {
            let cell = try #require(Self.documentedCell(header, key: key, column: 1, in: text), "\(header) \(key): no row")
            #expect(cell == "`\(value)`", "\(header) \(key): documented default \(cell), the code's is `\(value)`")
        }
    }

    /// A config holding every table, valid as it is.
    static let base = """
        [node]
        name = "n"
        registry = "peer:p"
        [tun]
        address = ["10.0.0.1/24"]
        [[peer]]
        name = "p"
        key = "p"
        endpoint = "https://hub.example:443"
        [[forward]]
        listen = "127.0.0.1:1"
        peer = "p"
        target = "127.0.0.1:2"
        [limits]
        """

    static let ha = """
        [ha]
        port = "hq"
        advertise = ["byst://192.0.2.1:7000"]
        """

    /// `base` (with `[ha]`) with `key` of `table` set to an inline table, a type no key takes.
    static func config(_ table: ConfigTableSchema, wrongTyped key: String) -> String {
        var lines = (base + "\n" + ha).split(separator: "\n").map(String.init)
        guard let header = lines.firstIndex(of: table.header) else { return "" }
        let end = lines[(header + 1)...].firstIndex { $0.hasPrefix("[") } ?? lines.count
        var body = Array(lines[(header + 1)..<end])
        body.removeAll { $0.hasPrefix("\(key) =") }
        lines.replaceSubrange((header + 1)..<end, with: ["\(key) = { wrong = 1 }"] + body)
        return lines.joined(separator: "\n")
    }

    @Test func theBaseConfigIsValid() throws {
        _ = try NodeConfig.parse(Self.base + "\n" + Self.ha, file: "base.toml")
    }

    /// The loader reads every key of the schema: none is accepted and then ignored.
    @Test func everyKeyOfTheSchemaIsRead() {
        for table in ConfigSchema.tables {
            for key in table.keyNames {
                let text = Self.config(table, wrongTyped: key)
                do throws(ConfigError) {
                    _ = try NodeConfig.parse(text, file: "k.toml")
                    Issue.record("\(table.header) \(key) = { wrong = 1 } was accepted")
                } catch {
                    #expect(error.description.contains("\(key) must be") || error.description.contains("\(key) is required"),
                            "\(table.header) \(key): \(error)")
                    #expect(!error.description.contains("unknown key"), "\(table.header) \(key): \(error)")
                }
            }
        }
    }
}
