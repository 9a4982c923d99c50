/// Rejects message 1s outside the timestamp window and exact replays inside it
/// (PROTOCOL.md §3.4). Shared by every responder of a node.
///
/// **Invariants**
/// - Holds at most `capacity` remembered ephemeral keys; an entry is dropped once its
///   timestamp is older than the window, or when the filter is full (then `floor` rises to
///   its timestamp, so the dropped message can never be accepted again).
/// - Only messages that decrypted under a configured PSK are remembered, so strangers
///   cannot fill the filter.
public struct HandshakeReplayFilter: Sendable {
    public let window: Duration
    public let capacity: Int
    private var seen: Set<[UInt8]> = []
    private var order: [(ephemeral: [UInt8], timestamp: UInt64)] = []
    private var head = 0
    private var floor: UInt64 = 0

    public init(window: Duration = .seconds(120), capacity: Int = 65_536) {
        self.window = window
        self.capacity = max(capacity, 16)
    }

    private var windowNanoseconds: UInt64 {
        let (seconds, attoseconds) = window.components
        return UInt64(max(seconds, 0)) &* 1_000_000_000 &+ UInt64(max(attoseconds, 0) / 1_000_000_000)
    }

    public var count: Int { seen.count }

    /// Checks and, if fresh, remembers a message 1 identified by its ephemeral key.
    public mutating func admit(timestamp: UInt64, ephemeral: [UInt8], now: UInt64) throws(HandshakeError) {
        let skew = Int64(truncatingIfNeeded: timestamp &- now)
        guard skew.magnitude <= windowNanoseconds else { throw .timestampOutsideWindow(skewNanoseconds: skew) }
        expire(now: now)
        guard timestamp > floor, !seen.contains(ephemeral) else { throw .replayed }
        if seen.count >= capacity { evictOldest() }
        seen.insert(ephemeral)
        order.append((ephemeral, timestamp))
    }

    private mutating func expire(now: UInt64) {
        let oldest = now > windowNanoseconds ? now - windowNanoseconds : 0
        while head < order.count, order[head].timestamp < oldest {
            seen.remove(order[head].ephemeral)
            head += 1
        }
        compact()
    }

    private mutating func evictOldest() {
        guard head < order.count else { return }
        floor = max(floor, order[head].timestamp)
        seen.remove(order[head].ephemeral)
        head += 1
        compact()
    }

    /// Drops consumed entries once they are half the array, keeping appends amortised O(1).
    private mutating func compact() {
        if head > 0 && head * 2 >= order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
