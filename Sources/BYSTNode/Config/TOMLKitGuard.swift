/// Finds the syntax errors that crash TOMLKit's parser, before TOMLKit sees the text.
///
/// toml++ 3.4.0 (inside TOMLKit) asserts, and so aborts the process, on two kinds of bad
/// TOML, both found by the `config` fuzz target:
/// - a table header whose key starts with a character that starts no key: `[.a]`, `[!`,
///   `[[[1]]]`, `[` at the end of a line (`parse_table_header` calls `parse_key` unchecked;
///   fixed upstream in marzer/tomlplusplus#301);
/// - `}` where an array expects a value: `x = [}`, `x = ["a", }` (`parse_array` calls
///   `parse_value` on it).
/// Both are syntax errors anyway: this reports them as such.
///
/// It knows just enough TOML to tell where toml++ would read them: headers are a `[` first
/// on a line (after spaces and tabs) outside strings, comments and open arrays or inline
/// tables; a `}` is inside an array when the innermost open bracket is a `[`.
enum TOMLKitGuard {
    struct Problem: Equatable {
        /// 1-based, like TOMLKit's positions.
        var line: Int
        var column: Int
        var message: String
    }

    static func firstProblem(in text: String) -> Problem? {
        var scanner = Scanner()
        var bytes = Array(text.utf8)
        // toml++ skips a UTF-8 byte order mark before the first statement.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var line = 1
        var lineStart = 0
        while lineStart <= bytes.count {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let content = bytes[lineStart..<lineEnd]
            if scanner.atStatementStart, let first = content.firstIndex(where: { !isBlank($0) }),
               content[first] == UInt8(ascii: "[") {
                if let bad = crashingKeyStart(content[first...]) {
                    return Problem(line: line, column: bad - lineStart + 1, message: "expected a table name after '['")
                }
                // A header occupies its line: a valid one opens no string and no bracket.
            } else if let bad = scanner.scan(content) {
                return Problem(line: line, column: bad - lineStart + 1, message: "'}' inside an array")
            }
            line += 1
            lineStart = lineEnd + 1
        }
        return nil
    }

    /// Where toml++ would start reading the key of `header` (a line from its `[`) with a
    /// character that starts no key; nil when it reads a key or reports the header cleanly.
    /// Mirrors `parse_table_header`: `[`, blanks, an optional second `[` (an error after
    /// blanks), blanks, then the key — `]` there is a clean error too.
    private static func crashingKeyStart(_ header: ArraySlice<UInt8>) -> Int? {
        var index = header.startIndex + 1
        func skipBlanks() -> Bool {
            let start = index
            while index < header.endIndex, isBlank(header[index]) { index += 1 }
            return index > start
        }
        let blanks = skipBlanks()
        if index < header.endIndex, header[index] == UInt8(ascii: "[") {
            if blanks { return nil }
            index += 1
            _ = skipBlanks()
        }
        // The line (or the text) ends where the key should start: the line break would be read as one.
        guard index < header.endIndex else { return index }
        let byte = header[index]
        let startsKey = isBareKeyByte(byte) || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: "]")
        return startsKey ? nil : index
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    /// TOML's lexical structure across lines: multi-line strings and open brackets.
    private struct Scanner {
        enum Text { case none, multiLineBasic, multiLineLiteral }
        var text = Text.none
        /// The `[` and `{` of the value being read, innermost last.
        var open: [UInt8] = []

        /// Whether the next line starts a statement (key/value pair or table header).
        var atStatementStart: Bool { text == .none && open.isEmpty }

        /// Reads one line of a key/value pair; returns the index of a `}` inside an array.
        mutating func scan(_ line: ArraySlice<UInt8>) -> Int? {
            let basic = UInt8(ascii: "\""), literal = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
            var index = line.startIndex
            func triple(_ quote: UInt8) -> Bool {
                index + 2 < line.endIndex && line[index] == quote && line[index + 1] == quote && line[index + 2] == quote
            }
            while index < line.endIndex {
                switch text {
                case .multiLineBasic:
                    if line[index] == backslash {
                        index += 2
                    } else if triple(basic) {
                        text = .none
                        index += 3
                    } else {
                        index += 1
                    }
                case .multiLineLiteral:
                    if triple(literal) {
                        text = .none
                        index += 3
                    } else {
                        index += 1
                    }
                case .none:
                    let byte = line[index]
                    if byte == UInt8(ascii: "#") { return nil }
                    if triple(basic) || triple(literal) {
                        text = byte == basic ? .multiLineBasic : .multiLineLiteral
                        index += 3
                        continue
                    }
                    if byte == basic || byte == literal {
                        // A one-line string: to its closing quote, or the end of the line.
                        index += 1
                        while index < line.endIndex, line[index] != byte {
                            index += byte == basic && line[index] == backslash ? 2 : 1
                        }
                    } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                        open.append(byte)
                    } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                        if byte == UInt8(ascii: "}"), open.last == UInt8(ascii: "[") { return index }
                        _ = open.popLast()
                    }
                    index += 1
                }
            }
            return nil
        }
    }
}
