import Glibc
import Logging

/// `--log-format text`: swift-log's stream format on standard error, with control characters
/// in the message and in metadata values escaped (`\n`, `\u{1B}`), as the JSON format escapes
/// them: a peer-supplied string in a log line (a node name, a registry message, a port name)
/// can neither start a forged line nor send terminal escapes to whoever reads the log.
///
/// When standard error is journald's stream (systemd sets `JOURNAL_STREAM` to its device and
/// inode), each line starts with its syslog priority, `<6>info byst: …`, and carries no
/// timestamp of its own: journald keeps the priority (`journalctl -p warning`) and the time.
struct TextLogHandler: LogHandler {
    private var stream: StreamLogHandler
    private let label: String
    /// Whether lines go to journald (see above).
    let journal: Bool
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, journal: Bool = JournalStream.isStandardError()) {
        stream = StreamLogHandler.standardError(label: label)
        self.label = label
        self.journal = journal
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        let escaped = Self.escaping(event, metadata: merged)
        guard journal else { return stream.log(event: escaped) }
        writeStandardError(Self.journalLine(escaped, label: label) + "\n")
    }

    /// `<6>info byst: node=hub peer=branch [BYSTNode] link up`: priority, then swift-log's
    /// stream format without its timestamp (metadata sorted by key).
    static func journalLine(_ event: LogEvent, label: String) -> String {
        var line = "<\(JournalStream.priority(event.level))>\(event.level) \(label):"
        for (key, value) in (event.metadata ?? [:]).sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        if let error = event.error { line += " error=\("\(error)".escapingControlCharacters())" }
        return line + " [\(event.source)] \(event.message)"
    }

    /// `event` with its message and all metadata (`metadata` under the event's own) escaped.
    static func escaping(_ event: LogEvent, metadata: Logger.Metadata) -> LogEvent {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        var escaped = event
        escaped.message = "\(event.message.description.escapingControlCharacters())"
        escaped.metadata = merged.mapValues(Self.escaped)
        return escaped
    }

    private static func escaped(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(text.escapingControlCharacters())
        case .stringConvertible(let convertible): .string(convertible.description.escapingControlCharacters())
        case .dictionary(let dictionary): .dictionary(dictionary.mapValues(escaped))
        case .array(let array): .array(array.map(escaped))
        }
    }
}
