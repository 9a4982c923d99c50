/// The connections whose handshake has not completed yet (unauthenticated, so anyone's),
/// bounded: admitting one more than `capacity` evicts the oldest. Sans-IO; the node keeps
/// the channels and closes whatever this table evicts.
///
/// Evicting the oldest (rather than refusing the newest) keeps the node reachable under a
/// flood: a real peer completes its handshake within a round trip or two, so it is never
/// the oldest for long, while junk that sends nothing is pushed out by newer junk.
///
/// **Invariants**
/// - `count ≤ capacity` after every call.
/// - Entries leave in admission order; `remove` of an entry is O(1) (lazily skipped later).
public struct PendingHandshakeTable<ID: Hashable>: Sendable where ID: Sendable {
    public let capacity: Int
    /// Admission number of each entry.
    private var entries: [ID: UInt64] = [:]
    /// Admission order, with entries already removed skipped when they reach the front.
    private var order: [(id: ID, number: UInt64)] = []
    private var head = 0
    private var admitted: UInt64 = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { entries.count }

    public func contains(_ id: ID) -> Bool { entries[id] != nil }

    /// Adds `id` (again: it moves to the back) and returns what had to make room for it.
    public mutating func admit(_ id: ID) -> [ID] {
        admitted += 1
        entries[id] = admitted
        order.append((id, admitted))
        var evicted: [ID] = []
        while entries.count > capacity, let oldest = popOldest() {
            evicted.append(oldest)
        }
        compact()
        return evicted
    }

    /// The handshake completed or the connection closed.
    public mutating func remove(_ id: ID) {
        entries[id] = nil
        // The order array is cleaned when its front is reached; bound its garbage here.
        if order.count - head > 2 * capacity + 16 { rebuildOrder() }
    }

    private mutating func popOldest() -> ID? {
        while head < order.count {
            let (id, number) = order[head]
            head += 1
            if entries[id] == number {
                entries[id] = nil
                return id
            }
        }
        return nil
    }

    /// Drops consumed entries once they are half the array (amortised O(1) appends).
    private mutating func compact() {
        if head > 0, head * 2 >= order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    private mutating func rebuildOrder() {
        order = order[head...].filter { entries[$0.id] == $0.number }
        head = 0
    }
}
