import Synchronization

/// What the event loop and the data plane both see of one link the plane owns: counters the
/// plane adds to and the loop folds into the session and metrics, and two flags. Atomics,
/// relaxed: each value stands alone, and the loop only reads them between its own steps.
final class DataPlaneLinkShared: Sendable {
    /// When the plane last opened a record from the link (monotonic ns, `Clocks.monotonic`).
    let lastReceived = Atomic<UInt64>(0)
    /// Wire bytes the plane read from and wrote to the socket.
    let bytesIn = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)
    /// Records the plane sealed (its own and the loop's), and records of packets only it
    /// opened and wrote to the TUN itself, with their packets and payload bytes.
    let recordsSealed = Atomic<UInt64>(0)
    let packetRecordsOpened = Atomic<UInt64>(0)
    let packetsIn = Atomic<UInt64>(0)
    let payloadBytesIn = Atomic<UInt64>(0)
    /// Packets from the TUN the plane sent on the link.
    let packetsOut = Atomic<UInt64>(0)
    /// Records handed to the loop and not yet handled there. While any is, records of
    /// packets only go to the loop too, behind them, so no flow is reordered.
    let recordsAtLoop = Atomic<Int>(0)
    /// More unsent bytes than the plane's high-water mark: the loop holds back what it would
    /// send on this link until the plane says there is room again.
    let backlogged = Atomic<Bool>(false)
    /// The session counts the link idle (set by the loop after each poll): the plane wakes
    /// the loop when the link next carries packets, which the session would not see itself.
    let idle = Atomic<Bool>(false)

    init(now: UInt64) { lastReceived.store(now, ordering: .relaxed) }
}
