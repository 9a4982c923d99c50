import BYSTProto
import Logging

/// Log lines that strangers can cause (refused handshakes, HTTP refusals, caps reached) go
/// through here, so a flood cannot flood the log: per topic, a burst of lines, then one a
/// second; the next line that passes says how many were left out.
///
/// **Invariants**: used on the node's event loop only; at most `burst` lines plus one per
/// second per topic reach the logger; the topics are a fixed, small set.
final class LogLimiter {
    enum Topic: Hashable {
        /// Accepted links whose handshake failed or timed out.
        case handshake
        /// Requests refused by the HTTP link listeners.
        case http
        /// A cap of `[limits]`.
        case limit(ResourceLimit)
        /// Port claims the embedded registry refused (`[[peer]] ports`).
        case registryDenial
        /// Forwarded streams the peer refused (reset with a refusal code).
        case streamRefused
    }

    /// Ten lines show what is going on; after that one a second keeps it visible.
    static let burst = 10
    static let perSecond = 1

    private var topics: [Topic: (bucket: TokenBucket, suppressed: Int)] = [:]

    /// Logs `message` unless `topic` is over its rate; then it is only counted. Neither the
    /// message nor the logger (with its metadata) is made for a line that is not written.
    func log(_ topic: Topic, level: Logger.Level, _ message: @autoclosure () -> String, to makeLogger: @autoclosure () -> Logger,
             metadata: Logger.Metadata? = nil, now: Nanoseconds = Clocks.monotonic()) {
        var state = topics[topic] ?? (TokenBucket(rate: Self.perSecond, burst: Self.burst, now: now), 0)
        defer { topics[topic] = state }
        guard state.bucket.take(now: now) else {
            state.suppressed += 1
            return
        }
        let suppressed = state.suppressed
        state.suppressed = 0
        let logger = makeLogger()
        guard logger.logLevel <= level else { return }
        let note = suppressed > 0 ? " (\(suppressed) similar line\(suppressed == 1 ? "" : "s") suppressed)" : ""
        logger.log(level: level, "\(message())\(note)", metadata: metadata)
    }
}
