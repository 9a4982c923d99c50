/// A line-by-line map of a TOML document: which lines are table headers, keys, comments.
///
/// TOMLKit gives positions for syntax errors only, so the loader finds the line of a key
/// with a bad value here, and `ConfigEditor` finds the blocks it cuts and pastes. The scan
/// follows strings (basic, literal, multi-line) and brackets, so a `#`, `[` or `=` inside
/// a string or a multi-line array is not mistaken for a comment, header or key. It is only
/// run on text TOMLKit has accepted, or to place an error after a failure, never to decide
/// whether a document is valid.
struct ConfigSource {
    enum LineKind: Equatable {
        case blank
        case comment
        /// `[name]` (`isArray` false) or `[[name]]`; `name` as written, quotes removed.
        case header(name: String, isArray: Bool)
        /// `key = …`; `key` as written before `=`, spaces and quotes removed.
        case keyValue(key: String)
        /// Inside a multi-line string, array or inline table begun on an earlier line.
        case continuation
    }

    /// The document from one header to the next (the root block has no header).
    struct Block {
        var name: String?
        var isArray: Bool
        /// 0-based index of the header line in `lines` (-1 for the root block).
        var headerIndex: Int
        /// 0-based index one past the block's last line.
        var endIndex: Int
        /// 1-based line of the first occurrence of each key.
        var keyLines: [String: Int]
    }

    let lines: [Substring]
    let kinds: [LineKind]
    let blocks: [Block]
    /// Indices in `blocks` of each `[[name]]`'s elements, in order (lookups stay O(1) for
    /// a file with thousands of `[[peer]]`s).
    private let arrayBlocks: [String: [Int]]

    init(_ text: String) {
        // By byte: as a Character, "\r\n" is one grapheme and would not split at "\n".
        lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Substring.init)
        var scanner = Scanner()
        kinds = lines.map { line in
            line.utf8.withContiguousStorageIfAvailable { scanner.classify($0) }
                ?? Array(line.utf8).withUnsafeBufferPointer { scanner.classify($0) }
        }
        var blocks = [Block(name: nil, isArray: false, headerIndex: -1, endIndex: 0, keyLines: [:])]
        for (index, kind) in kinds.enumerated() {
            switch kind {
            case .header(let name, let isArray):
                blocks[blocks.count - 1].endIndex = index
                blocks.append(Block(name: name, isArray: isArray, headerIndex: index, endIndex: index + 1, keyLines: [:]))
            case .keyValue(let key):
                if blocks[blocks.count - 1].keyLines[key] == nil { blocks[blocks.count - 1].keyLines[key] = index + 1 }
            default: break
            }
        }
        blocks[blocks.count - 1].endIndex = lines.count
        self.blocks = blocks
        var arrayBlocks: [String: [Int]] = [:]
        for (index, block) in blocks.enumerated() where block.isArray {
            if let name = block.name { arrayBlocks[name, default: []].append(index) }
        }
        self.arrayBlocks = arrayBlocks
    }

    /// `[name]` when `index` is nil, else the `index`-th (0-based) `[[name]]`.
    func block(_ name: String, index: Int?) -> Block? {
        guard let index else { return blocks.first { $0.name == name && !$0.isArray } }
        let matching = arrayBlocks[name] ?? []
        return index < matching.count ? blocks[matching[index]] : nil
    }

    /// How many `[[name]]` headers the text has.
    func arrayCount(_ name: String) -> Int { arrayBlocks[name]?.count ?? 0 }

    /// The 1-based line of `key` in the table, else of the table's header.
    func line(ofKey key: String?, inTable name: String, index: Int?) -> Int? {
        guard let block = block(name, index: index) else { return nil }
        if let key, let line = block.keyLines[key] { return line }
        return block.headerIndex + 1
    }

    /// The 1-based line where a top-level name first appears: as a root key, a header, or
    /// the first part of a dotted header (`[name.sub]`).
    func line(ofTopLevel name: String) -> Int? {
        if let line = blocks[0].keyLines[name] { return line }
        for block in blocks.dropFirst() {
            guard let header = block.name else { continue }
            if header == name || header.hasPrefix(name + ".") { return block.headerIndex + 1 }
        }
        return nil
    }

    /// A TOML lexer reduced to what line classification needs, carrying state across lines.
    private struct Scanner {
        enum State { case normal, multiLineBasic, multiLineLiteral }
        var state = State.normal
        /// Open `[` / `{` of a value spanning lines.
        var depth = 0

        mutating func classify(_ bytes: UnsafeBufferPointer<UInt8>) -> LineKind {
            let continues = state != .normal || depth > 0
            var start = 0
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
            if !continues {
                if start == bytes.count || bytes[start...].allSatisfy({ $0 == UInt8(ascii: "\r") }) { return .blank }
                if bytes[start] == UInt8(ascii: "#") { return .comment }
                if bytes[start] == UInt8(ascii: "[") { return Self.header(bytes[start...]) }
            }
            let keyEnd = continues ? start : scan(bytes, from: start, stopAtEquals: true)
            if !continues, keyEnd < bytes.count {
                _ = scan(bytes, from: keyEnd + 1, stopAtEquals: false)
                return .keyValue(key: Self.key(bytes[start..<keyEnd]))
            }
            _ = scan(bytes, from: start, stopAtEquals: false)
            return .continuation
        }

        /// Advances through one line, tracking strings and brackets; returns the index of
        /// the first `=` outside strings when `stopAtEquals`, else `bytes.count`.
        private mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, stopAtEquals: Bool) -> Int {
            var i = start
            func at(_ offset: Int, _ text: StaticString) -> Bool {
                let pattern = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
                guard offset + pattern.count <= bytes.count else { return false }
                return bytes[offset..<(offset + pattern.count)].elementsEqual(pattern)
            }
            while i < bytes.count {
                switch state {
                case .multiLineBasic:
                    if bytes[i] == UInt8(ascii: "\\") { i += 2; continue }
                    if at(i, "\"\"\"") { state = .normal; i += 3; continue }
                case .multiLineLiteral:
                    if at(i, "'''") { state = .normal; i += 3; continue }
                case .normal:
                    switch bytes[i] {
                    case UInt8(ascii: "#"): return bytes.count
                    case UInt8(ascii: "="): if stopAtEquals { return i }
                    case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
                    case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
                    case UInt8(ascii: "\""):
                        if at(i, "\"\"\"") { state = .multiLineBasic; i += 3; continue }
                        i += 1
                        while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                    case UInt8(ascii: "'"):
                        if at(i, "'''") { state = .multiLineLiteral; i += 3; continue }
                        i += 1
                        while i < bytes.count, bytes[i] != UInt8(ascii: "'") { i += 1 }
                    default: break
                    }
                }
                i += 1
            }
            return bytes.count
        }

        private static func header(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> LineKind {
            let isArray = bytes.dropFirst().first == UInt8(ascii: "[")
            let inner = bytes.dropFirst(isArray ? 2 : 1).prefix { $0 != UInt8(ascii: "]") }
            return .header(name: key(inner), isArray: isArray)
        }

        /// `a . "b"` → `a.b`: spaces, tabs and quotes dropped.
        private static func key(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> String {
            let kept = bytes.filter {
                $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "'")
            }
            return String(decoding: kept, as: UTF8.self)
        }
    }
}
