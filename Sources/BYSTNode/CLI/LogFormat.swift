import ArgumentParser
import Logging

/// `byst up --log-format`: how log events are written to standard error.
enum LogFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// swift-log's stream format: `2025-03-01T12:00:00+0000 info byst: node=hub … link up`,
    /// control characters escaped (`TextLogHandler`).
    case text
    /// One JSON object per line (`JSONLogHandler`), for log shippers.
    case json

    func makeHandler(label: String, level: Logger.Level) -> any LogHandler {
        switch self {
        case .text:
            var handler = TextLogHandler(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
