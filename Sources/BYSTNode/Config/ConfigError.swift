/// Why a config file was refused, as one line an operator can act on:
///
///     /etc/byst/hub.toml:12: [[peer]] "branch-1": links must be an integer 1…64, got 0
///     /etc/byst/hub.toml:6:3: syntax error while parsing array: expected comma or closing ']', saw '"'
///     /etc/byst/hub.toml: missing required table [node]
///
/// **Invariants**
/// - `description` is a single line: control characters from the file (names, values,
///   parser messages) are escaped.
/// - `line` and `column` are 1-based; `column` is only set with `line`.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    /// The line the problem is on, when known (syntax errors always; semantic errors when the
    /// key could be found in the text).
    public var line: Int?
    public var column: Int?
    /// The table the problem is in: `[node]`, `[[peer]] "branch-1"`, `[[forward]] #2`.
    public var section: String?
    public var reason: Reason

    public enum Reason: Sendable, Equatable {
        /// The file could not be read (`operation`, strerror text).
        case unreadable(operation: String, detail: String)
        /// The edited file could not be written.
        case unwritable(operation: String, detail: String)
        /// Not UTF-8, or holds a NUL byte.
        case notText(String)
        /// The TOML parser's message.
        case syntax(String)
        /// A key the schema does not know (typo protection); `allowed` lists the valid ones.
        case unknownKey(String, allowed: [String])
        case missingKey(String)
        case missingTable(String)
        /// The value has the wrong TOML type; `got` names the type and, for scalars, the value.
        case wrongType(key: String, expected: String, got: String)
        /// The value has the right type but is out of range or malformed.
        case invalidValue(key: String, expected: String, got: String)
        /// `what` (e.g. `peer name`) `value` was already used, first on `firstLine`.
        case duplicate(what: String, value: String, firstLine: Int?)
        /// A `[[forward]]` names a peer no `[[peer]]` defines.
        case undefinedPeer(String)
        /// An `allowed_ips` prefix (network form) already in the `allowed_ips` of `peer`,
        /// on `firstLine`.
        case alreadyRouted(prefix: String, peer: String, firstLine: Int?)
        /// `key` (with `value`) needs another setting that is absent, e.g. `[node] registry`.
        case needs(key: String, value: String?, what: String)
        /// The file `key` names (`path`) cannot be used: missing, unreadable, malformed, unsafe.
        case unusableFile(key: String, path: String, detail: String)
        /// A recognised feature this version does not implement yet.
        case notSupportedYet(key: String, value: String?, feature: String)
        /// `byst peer rm` of a name no `[[peer]]` has.
        case peerNotFound(String)
        /// The file is valid but cannot be edited textually (e.g. peers as inline tables).
        case notEditable(String)
        /// The file holds a secret (`what`) but others may read it (`detail` says how to fix it).
        case exposedSecret(what: String, detail: String)
    }

    public init(file: String, line: Int? = nil, column: Int? = nil, section: String? = nil, reason: Reason) {
        self.file = file
        self.line = line
        self.column = line == nil ? nil : column
        self.section = section
        self.reason = reason
    }

    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": "
        if let section { text += section + ": " }
        text += message
        return text.escapingControlCharacters()
    }

    /// The reason alone, without file, line and section.
    public var message: String {
        switch reason {
        case .unreadable(let operation, let detail): "cannot \(operation): \(detail)"
        case .unwritable(let operation, let detail): "cannot write (\(operation)): \(detail)"
        case .notText(let detail): detail
        case .syntax(let detail):
            // toml++ says "Error while parsing array: …"; read as "syntax error while parsing array: …".
            detail.hasPrefix("Error while ") ? "syntax error while " + detail.dropFirst("Error while ".count) : "syntax error: \(detail)"
        case .unknownKey(let key, let allowed):
            "unknown key \(key.configQuoted)" + (allowed.isEmpty ? "" : " (expected one of: \(allowed.joined(separator: ", ")))")
        case .missingKey(let key): "missing required key \(key.configQuoted)"
        case .missingTable(let table): "missing required table \(table)"
        case .wrongType(let key, let expected, let got), .invalidValue(let key, let expected, let got):
            "\(key) must be \(expected), got \(got)"
        case .duplicate(let what, let value, let firstLine):
            "duplicate \(what) \(value)" + (firstLine.map { " (first used on line \($0))" } ?? "")
        case .undefinedPeer(let name): "peer \(name.configQuoted) is not defined in any [[peer]]"
        case .alreadyRouted(let prefix, let peer, let firstLine):
            "allowed_ips \(prefix.configQuoted) is already routed to peer \(peer.configQuoted)" + (firstLine.map { " (line \($0))" } ?? "")
        case .needs(let key, let value, let what):
            key + (value.map { " \($0)" } ?? "") + " needs \(what)"
        case .unusableFile(let key, let path, let detail): "\(key) \(path.configQuoted): \(detail)"
        case .notSupportedYet(let key, let value, let feature):
            key + (value.map { " \($0)" } ?? "") + ": \(feature) is not supported yet"
        case .peerNotFound(let name): "no [[peer]] named \(name.configQuoted)"
        case .notEditable(let detail): detail
        case .exposedSecret(let what, let detail): "\(what), but \(detail)"
        }
    }
}

extension String {
    /// The string in double quotes, with `"` and `\` escaped (as TOML and Swift write it).
    var configQuoted: String {
        var text = "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }

    /// Control characters (newline, tab, escape …) as `\n`, `\t`, `\u{1B}`: keeps
    /// messages on one line and terminal-safe.
    func escapingControlCharacters() -> String {
        guard unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return self }
        var text = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.properties.generalCategory == .control:
                text += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text
    }
}
