import Foundation
import Testing
@testable import BYSTNode

/// `ConfigSchema` is the list of keys: the loader accepts exactly those, reads every one of
/// them, and docs/OPERATIONS.md documents exactly those, table by table.
@Suite struct ConfigReferenceTests {
    static let operations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/OPERATIONS.md")

    /// The key names in the first column of the reference table under the heading that names
    /// `header` (`### \`[node]\` (required)`): "`a`, `b`" gives both.
    static func documentedKeys(_ header: String, in text: String) -> [String]? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let heading = lines.firstIndex(where: { $0.hasPrefix("#") && $0.drop { $0 == "#" }.hasPrefix(" `\(header)`") }) else {
            return nil
        }
        var keys: [String] = []
        var inTable = false
        for line in lines[(heading + 1)...] {
            if line.hasPrefix("#") { break }
            guard line.hasPrefix("|") else {
                if inTable { break }
                continue
            }
            inTable = true
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
            guard cells.count > 2 else { continue }
            let first = cells[1]
            guard first.contains("`") else { continue }  // the header and separator rows
            keys += first.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
        return keys
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
