import Glibc
import Logging

/// systemd connects a service's standard error to journald and says so in `JOURNAL_STREAM`
/// (`DEVICE:INODE` of that stream, sd-daemon(3)); a line written there may start with a
/// syslog priority `<N>` (`SyslogLevelPrefix=`, on by default).
enum JournalStream {
    /// Whether standard error is the stream `JOURNAL_STREAM` names (not merely set: a child
    /// whose stderr was redirected inherits the variable).
    static func isStandardError(environment: String? = getenv("JOURNAL_STREAM").map { String(cString: $0) }) -> Bool {
        guard let environment, let identity = parse(environment) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == identity.device && UInt64(info.st_ino) == identity.inode
    }

    /// `DEVICE:INODE`, both decimal.
    static func parse(_ text: String) -> (device: UInt64, inode: UInt64)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        return (device, inode)
    }

    /// The syslog priority of a swift-log level (RFC 5424 severities).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}
