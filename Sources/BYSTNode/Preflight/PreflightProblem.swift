/// One thing `byst up` would refuse (or, as a warning, trip over later), where the config
/// says it: `/etc/byst/hub.toml:4: [node] listen 0.0.0.0:7000: Address already in use`.
public struct PreflightProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: Sendable, Equatable {
        /// `byst up` refuses to start.
        case error
        /// `byst up` starts, but this fails later (say, when an HA gateway becomes active).
        case warning
    }

    /// `file:line` (or `file`), when the problem comes from a setting.
    public var location: String?
    public var message: String
    public var severity: Severity

    public init(location: String?, message: String, severity: Severity = .error) {
        self.location = location
        self.message = message
        self.severity = severity
    }

    public var description: String {
        ((location.map { $0 + ": " } ?? "") + (severity == .warning ? "warning: " : "") + message).escapingControlCharacters()
    }
}
