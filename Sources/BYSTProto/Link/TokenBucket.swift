/// A token bucket kept in nanoseconds of credit, as wireguard-go's `ratelimiter` does: time
/// passing adds credit, each admitted event costs `1 s / rate`, and credit never exceeds
/// `burst` events' worth. Integer arithmetic only; the caller supplies the time.
///
/// **Invariants**
/// - `credit ≤ capacity`; a bucket starts full.
/// - `rate ≥ 1` and `burst ≥ 1` (the initialiser clamps), so `cost ≥ 1` and `capacity ≥ cost`.
/// - Time going backwards adds nothing (the last time seen is kept).
public struct TokenBucket: Sendable, Equatable {
    /// Nanoseconds of credit one event costs.
    public let cost: UInt64
    /// Credit of a full bucket: `burst` events.
    public let capacity: UInt64
    private var credit: UInt64
    private var last: Nanoseconds

    /// - Parameters:
    ///   - rate: events per second in the long run (at least 1).
    ///   - burst: events admitted back to back from a full bucket (at least 1).
    public init(rate: Int, burst: Int, now: Nanoseconds) {
        cost = 1_000_000_000 / UInt64(max(1, min(rate, 1_000_000_000)))
        let (product, overflow) = cost.multipliedReportingOverflow(by: UInt64(max(1, burst)))
        capacity = overflow ? .max : product
        credit = capacity
        last = now
    }

    /// Takes one event's credit if there is enough; false: the event is over the rate.
    public mutating func take(now: Nanoseconds) -> Bool {
        refill(now: now)
        guard credit >= cost else { return false }
        credit -= cost
        return true
    }

    /// Whether the bucket has refilled completely by `now`: forgetting it changes nothing.
    public func isFull(now: Nanoseconds) -> Bool {
        now >= last && (now - last >= capacity - credit)
    }

    private mutating func refill(now: Nanoseconds) {
        guard now > last else { return }
        let elapsed = now - last
        last = now
        credit = elapsed >= capacity - credit ? capacity : credit + elapsed
    }
}
