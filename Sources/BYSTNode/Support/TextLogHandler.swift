import Logging

/// `--log-format text`: swift-log's stream format on standard error, with control characters
/// in the message and in metadata values escaped (`\n`, `\u{1B}`), as the JSON format escapes
/// them: a peer-supplied string in a log line (a node name, a registry message, a port name)
/// can neither start a forged line nor send terminal escapes to whoever reads the log.
struct TextLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String) {
        stream = StreamLogHandler.standardError(label: label)
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
        stream.log(event: Self.escaping(event, metadata: merged))
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
