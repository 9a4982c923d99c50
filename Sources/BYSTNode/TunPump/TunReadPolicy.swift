/// Who reads a TUN queue (docs/ARCHITECTURE.md §3.6). Light traffic is read on the event
/// loop: a packet then costs no hop between threads, which is most of a ping's time in user
/// space. Bulk traffic is read on the queue's reader thread: its reads overlap the loop's
/// sealing and socket writes, which doubles throughput on two cores (docs/perf-log/
/// 2026-11-27-tun-speed-issue-7.md, "The TUN read by the event loop under light traffic").
struct TunReadPolicy {
    /// A loop read cycle that found this many packets (or bytes) waiting has fallen behind:
    /// reading moves to the thread.
    static let loopBusyPackets = 4
    static let loopBusyBytes = 32 * 1024
    /// The thread gives reading back after this long without a packet…
    static let threadIdleMilliseconds: Int32 = 10
    /// …or after this many batches in a row of one small packet each (light traffic that
    /// never pauses for `threadIdleMilliseconds`, such as a fast ping).
    static let threadLightStreak = 64
    static let smallPacketBytes = 2048

    static func loopCycleFellBehind(packets: Int, bytes: Int) -> Bool {
        packets >= loopBusyPackets || bytes >= loopBusyBytes
    }

    /// NIO reads one packet per wake-up, so a loop read cycle looks for a backlog with a read
    /// of its own — but only when the previous cycle was this recent: sparse packets (a ping)
    /// leave no backlog, and the read would only find the queue empty. A burst after a pause
    /// is seen one cycle later, since epoll wakes the loop again at once.
    static let backlogLookNanoseconds: UInt64 = 1_000_000

    static func loopCycleShouldLookForBacklog(sincePreviousCycle elapsed: UInt64) -> Bool {
        elapsed < backlogLookNanoseconds
    }

    private var lightBatches = 0

    /// The thread read a batch: whether traffic is light enough to give reading back.
    mutating func threadShouldHandBack(afterBatchOf packets: Int, bytes: Int) -> Bool {
        if packets == 1, bytes <= Self.smallPacketBytes { lightBatches += 1 } else { lightBatches = 0 }
        guard lightBatches >= Self.threadLightStreak else { return false }
        lightBatches = 0
        return true
    }

    /// The thread found nothing for `threadIdleMilliseconds`.
    mutating func threadWasIdle() { lightBatches = 0 }
}
