/// Where settings are written in the config file, for `file:line` in preflight problems.
struct ConfigLines {
    let file: String
    private let text: Text

    /// The file's line map, made at the first location asked for (a clean start asks none,
    /// and a hub's 10,000-peer file takes tens of milliseconds to map).
    private final class Text {
        let text: String?
        lazy var source: ConfigSource? = text.map(ConfigSource.init)
        init(_ text: String?) { self.text = text }
    }

    /// `text` nil (a config built in code): locations name the file alone.
    init(file: String, text: String?) {
        self.file = file
        self.text = Text(text)
    }

    /// `file:line` of `key` in `[table]` (`index` nil) or the `index`-th `[[table]]`; the
    /// table's header when the key is not written; the file when neither is found.
    /// With `value`, the line of a multi-line array holding `"value"`.
    func location(_ key: String?, table: String, index: Int? = nil, value: String? = nil) -> String {
        guard let source = text.source, var line = source.line(ofKey: key, inTable: table, index: index) else { return file }
        if let value, let key, source.block(table, index: index)?.keyLines[key] == line {
            var at = line - 1
            while at < source.lines.count {
                if source.lines[at].contains("\"\(value)\"") || source.lines[at].contains("'\(value)'") {
                    line = at + 1
                    break
                }
                at += 1
                guard at < source.lines.count, source.kinds[at] == .continuation else { break }
            }
        }
        return "\(file):\(line)"
    }
}
