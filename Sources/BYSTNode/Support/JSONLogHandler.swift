import Glibc
import Logging

/// A swift-log handler writing one JSON object per line to standard error
/// (`byst up --log-format json`, docs/OPERATIONS.md "Logs"):
///
///     {"time":"2025-03-01T12:00:00.123Z","level":"info","label":"byst","message":"link up","metadata":{"link":"3","peer":"hub"}}
///
/// **Invariants**
/// - Each event is exactly one line: every control character, quote and backslash inside a
///   string is escaped (RFC 8259 §7), so a message holding a newline cannot forge a line.
/// - Keys come in a fixed order: `time`, `level`, `label`, `message`, then `metadata` (an
///   object, keys sorted; nested values as JSON objects and arrays) when there is any, and
///   `error` when the event carries one.
/// - `time` is RFC 3339 in UTC with milliseconds.
/// - A line goes out in one write(2) call (short writes aside), so lines from several
///   threads do not interleave.
/// - Under journald (`JournalStream`) the line starts with its syslog priority `<N>`, which
///   journald removes.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// Whether standard error is journald's stream (`JournalStream`).
    let journal: Bool

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil, journal: Bool = JournalStream.isStandardError()) {
        self.label = label
        self.journal = journal
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        var line = Self.line(time: Self.now(), level: event.level, label: label, message: "\(event.message)", metadata: all,
                             error: event.error.map { "\($0)" })
        line.append("\n")
        // journald takes the priority off the line, leaving the object as MESSAGE.
        writeStandardError(journal ? "<\(JournalStream.priority(event.level))>" + line : line)
    }

    // MARK: Formatting (pure, for tests)

    static func line(time: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata,
                     error: String? = nil) -> String {
        var out = "{\"time\":"
        appendString(time, to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"label\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        if !metadata.isEmpty {
            out += ",\"metadata\":"
            appendObject(metadata, to: &out)
        }
        if let error {
            out += ",\"error\":"
            appendString(error, to: &out)
        }
        out += "}"
        return out
    }

    private static func appendObject(_ metadata: Logger.Metadata, to out: inout String) {
        out += "{"
        for (index, key) in metadata.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            appendString(key, to: &out)
            out += ":"
            if let value = metadata[key] { appendValue(value, to: &out) }
        }
        out += "}"
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let string): appendString(string, to: &out)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &out)
        case .dictionary(let dictionary): appendObject(dictionary, to: &out)
        case .array(let array):
            out += "["
            for (index, element) in array.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        }
    }

    /// A JSON string (RFC 8259 §7): `"` and `\` escaped, control characters as `\n`, `\t` …
    /// or `\u00XX`; U+2028 and U+2029 too, which some JavaScript parsers take for newlines.
    static func appendString(_ string: String, to out: inout String) {
        out.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    /// `2025-03-01T12:00:00.123Z` for a wall-clock time in nanoseconds since the epoch.
    static func rfc3339(nanosecondsSinceEpoch: Int64) -> String {
        var seconds = time_t(nanosecondsSinceEpoch / 1_000_000_000)
        let milliseconds = Int((nanosecondsSinceEpoch % 1_000_000_000) / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }

    private static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return rfc3339(nanosecondsSinceEpoch: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
