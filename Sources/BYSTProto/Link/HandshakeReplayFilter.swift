/// Rejects message 1s outside the timestamp window and exact replays inside it
/// (PROTOCOL.md §3.4). Shared by every responder of a node, with separate memory per key,
/// so one key holder cannot push other peers' handshakes out of the window.
///
/// **Invariants**
/// - Per key, at most `capacity` remembered ephemeral keys; an entry is dropped once its
///   timestamp is older than the window, or when that key's memory is full (then its `floor`
///   rises to the dropped timestamp, so the dropped message can never be accepted again).
/// - Only messages that decrypted under a configured PSK are remembered, so strangers
///   cannot fill the filter.
public struct HandshakeReplayFilter: Sendable {
    public let window: Duration
    public let capacity: Int
    private var keys: [KeyID: KeyMemory] = [:]

    public init(window: Duration = .seconds(120), capacity: Int = 4096) {
        self.window = window
        self.capacity = max(capacity, 16)
    }

    public var count: Int { keys.values.reduce(0) { $0 + $1.seen.count } }

    /// Checks and, if fresh, remembers a message 1 identified by its ephemeral key.
    public mutating func admit(keyID: KeyID, timestamp: UInt64, ephemeral: [UInt8], now: UInt64) throws(HandshakeError) {
        let windowNanoseconds = window.nanoseconds
        let skew = Int64(truncatingIfNeeded: timestamp &- now)
        guard skew.magnitude <= windowNanoseconds else { throw .timestampOutsideWindow(skewNanoseconds: skew) }
        var memory = keys.removeValue(forKey: keyID) ?? KeyMemory()
        defer { keys[keyID] = memory }
        memory.expire(olderThan: now > windowNanoseconds ? now - windowNanoseconds : 0)
        guard timestamp > memory.floor, !memory.seen.contains(ephemeral) else { throw .replayed }
        if memory.seen.count >= capacity { memory.evictOldest() }
        memory.seen.insert(ephemeral)
        memory.order.append((ephemeral, timestamp))
    }

    /// One key's remembered message 1s, oldest first.
    struct KeyMemory {
        var seen: Set<[UInt8]> = []
        var order: [(ephemeral: [UInt8], timestamp: UInt64)] = []
        var head = 0
        var floor: UInt64 = 0

        mutating func expire(olderThan oldest: UInt64) {
            while head < order.count, order[head].timestamp < oldest {
                seen.remove(order[head].ephemeral)
                head += 1
            }
            compact()
        }

        mutating func evictOldest() {
            guard head < order.count else { return }
            floor = max(floor, order[head].timestamp)
            seen.remove(order[head].ephemeral)
            head += 1
            compact()
        }

        /// Drops consumed entries once they are half the array, keeping appends amortised O(1).
        mutating func compact() {
            if head > 0 && head * 2 >= order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }
}
