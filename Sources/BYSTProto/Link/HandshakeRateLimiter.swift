/// Per-source rate limiting of handshake attempts, checked when a connection is accepted —
/// before a byte of it is read, so long before any cryptography (docs/OPERATIONS.md,
/// "Limits"). Sans-IO: the caller passes the source and the monotonic time.
///
///     accept ─▶ source (IPv4 address, IPv6 /64) ─▶ its token bucket ─▶ admit / refuse
///                          table full? ─▶ sweep idle buckets (≤ 1/s) ─▶ still full: shared bucket
///
/// **Invariants**
/// - At most `maxSources` buckets are kept, whatever the number of sources: memory is bounded
///   under a flood from many addresses.
/// - A bucket is only forgotten once it has refilled completely, so forgetting never gives a
///   source more than a fresh bucket would (`burst` at once, then `rate` per second).
/// - When the table is full of active sources, newcomers share one extra bucket with the same
///   rate and burst: a distributed flood cannot make the table or the admissions grow.
/// - `rate == 0` disables the limiter (everything is admitted, nothing is stored).
public struct HandshakeRateLimiter: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Attempts per second per source in the long run; 0 turns limiting off.
        public var rate: Int
        /// Attempts a source may make back to back (its links dialed at once, a reconnect).
        public var burst: Int
        /// Sources remembered at once.
        public var maxSources: Int

        public init(rate: Int, burst: Int, maxSources: Int) {
            self.rate = rate
            self.burst = burst
            self.maxSources = maxSources
        }
    }

    public let configuration: Configuration
    private var buckets: [HandshakeSource: TokenBucket] = [:]
    /// Shared by sources that found the table full.
    private var overflow: TokenBucket
    private var nextSweep: Nanoseconds = 0
    /// A full table is swept for idle buckets at most this often: a sweep is O(maxSources).
    static let sweepInterval: Nanoseconds = 1_000_000_000

    public init(configuration: Configuration, now: Nanoseconds) {
        var configuration = configuration
        configuration.maxSources = max(1, configuration.maxSources)
        self.configuration = configuration
        overflow = TokenBucket(rate: configuration.rate, burst: configuration.burst, now: now)
    }

    /// Sources with a bucket now.
    public var trackedSources: Int { buckets.count }

    /// Whether an attempt from `source` at `now` is within its rate; counts it if so.
    public mutating func admit(_ source: HandshakeSource, now: Nanoseconds) -> Bool {
        guard configuration.rate > 0 else { return true }
        if var bucket = buckets.removeValue(forKey: source) {
            defer { buckets[source] = bucket }
            return bucket.take(now: now)
        }
        if buckets.count >= configuration.maxSources, now >= nextSweep {
            nextSweep = now + Self.sweepInterval
            buckets = buckets.filter { !$0.value.isFull(now: now) }
        }
        guard buckets.count < configuration.maxSources else { return overflow.take(now: now) }
        var bucket = TokenBucket(rate: configuration.rate, burst: configuration.burst, now: now)
        let admitted = bucket.take(now: now)
        buckets[source] = bucket
        return admitted
    }
}
