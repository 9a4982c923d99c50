/// Whether a connection just accepted on a link listener goes on to its handshake — decided
/// from its source address alone, before a byte of it is read (docs/OPERATIONS.md, "Limits").
/// Sans-IO: the caller passes the source, the time, and how busy the event loop is (admitted
/// connections it has not set up yet, how late its timers run).
///
///     source over its own rate (HandshakeRateLimiter)? ──────────────────▶ rateLimited
///     source completed a handshake lately (a known peer)? ───────────────▶ admit
///     event loop behind (inFlight ≥ maxInFlight, or its timers late by
///     maxLoopLag or more), or unknown sources together over accept_rate? ─▶ overloaded
///     otherwise ─────────────────────────────────────────────────────────▶ admit
///
/// The global rate bounds what strangers together cost the event loop that also moves the
/// peers' data, whatever the number of addresses they flood from; known peers' reconnects
/// skip it, so a distributed flood delays only newcomers.
///
/// **Invariants**
/// - At most `trustedCapacity` trusted sources are remembered; an entry is forgotten
///   `trustWindow` after the last handshake from it (or earlier, oldest first, when full).
/// - `acceptRate == 0` turns the global rate off (`maxInFlight` still applies).
public struct AcceptPolicy: Sendable {
    public enum Verdict: Sendable, Equatable {
        case admit
        /// Over the source's own rate.
        case rateLimited
        /// Over the rate of all unknown sources together, or the event loop is behind.
        case overloaded
    }

    public struct Configuration: Sendable, Equatable {
        public var perSource: HandshakeRateLimiter.Configuration
        /// Connections per second from unknown sources together; 0: no global rate.
        public var acceptRate: Int
        public var acceptBurst: Int
        /// Admitted connections that may wait for the event loop at once.
        public var maxInFlight: Int
        /// How late the event loop's timers may run before strangers are turned away: beyond
        /// it the loop is saturated, and what it has left goes to the peers already connected.
        /// 20 ms: moving 1 Gbit/s through a debug build, the probe saw at most 10 ms.
        public var maxLoopLag: Duration
        /// How long a source stays known after its last completed handshake.
        public var trustWindow: Duration
        public var trustedCapacity: Int

        public init(perSource: HandshakeRateLimiter.Configuration, acceptRate: Int, acceptBurst: Int,
                    maxInFlight: Int = 64, maxLoopLag: Duration = .milliseconds(20), trustWindow: Duration = .seconds(600),
                    trustedCapacity: Int = 4096) {
            self.perSource = perSource
            self.acceptRate = acceptRate
            self.acceptBurst = acceptBurst
            self.maxInFlight = maxInFlight
            self.maxLoopLag = maxLoopLag
            self.trustWindow = trustWindow
            self.trustedCapacity = trustedCapacity
        }
    }

    public let configuration: Configuration
    private var perSource: HandshakeRateLimiter
    private var global: TokenBucket
    /// Sources with a completed handshake, and when it was.
    private var trusted: [HandshakeSource: Nanoseconds] = [:]

    public init(configuration: Configuration, now: Nanoseconds) {
        self.configuration = configuration
        perSource = HandshakeRateLimiter(configuration: configuration.perSource, now: now)
        global = TokenBucket(rate: configuration.acceptRate, burst: configuration.acceptBurst, now: now)
    }

    public var trustedSources: Int { trusted.count }

    /// - Parameters:
    ///   - inFlight: admitted connections the event loop has not set up yet.
    ///   - loopLag: how late the event loop's last timer ran.
    public mutating func decide(_ source: HandshakeSource, inFlight: Int, loopLag: Duration = .zero,
                                now: Nanoseconds) -> Verdict {
        guard perSource.admit(source, now: now) else { return .rateLimited }
        if let seen = trusted[source], now - min(seen, now) < configuration.trustWindow.nanoseconds { return .admit }
        guard inFlight < configuration.maxInFlight, loopLag < configuration.maxLoopLag else { return .overloaded }
        guard configuration.acceptRate == 0 || global.take(now: now) else { return .overloaded }
        return .admit
    }

    /// A handshake from `source` completed: its next connections skip the global rate.
    public mutating func trust(_ source: HandshakeSource, now: Nanoseconds) {
        if trusted[source] == nil, trusted.count >= configuration.trustedCapacity {
            let window = configuration.trustWindow.nanoseconds
            trusted = trusted.filter { now - min($0.value, now) < window }
            if trusted.count >= configuration.trustedCapacity, let oldest = trusted.min(by: { $0.value < $1.value }) {
                trusted[oldest.key] = nil
            }
        }
        trusted[source] = now
    }
}
