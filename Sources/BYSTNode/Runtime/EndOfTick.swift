// Work that waits for the end of the current event-loop tick, run by one queued task:
//
//   TunPump: read the TUN after writing to it ─┐
//   SessionRuntime.schedulePump ───────────────┴▶ EndOfTick ─▶ one `execute` ─▶ the read, then the pumps
//
// Why one task: each `execute` takes the loop's task lock and a queue entry, about a
// microsecond on an echo's path, and a received record asked for two of them.
/// Event loop only.
final class EndOfTick {
    private unowned let node: Node
    private var scheduled = false
    private var pumps: [SessionRuntime] = []
    /// `pumps` as taken by a run (kept, so a run allocates nothing).
    private var running: [SessionRuntime] = []

    init(node: Node) {
        self.node = node
    }

    /// The TUN pump reads its queues at the end of this tick (it keeps its own flag).
    func wantReadAfterWrite() {
        schedule()
    }

    /// `session` runs its pump at the end of this tick (once, however often it asks).
    func wantPump(_ session: SessionRuntime) {
        pumps.append(session)
        schedule()
    }

    private func schedule() {
        guard !scheduled else { return }
        scheduled = true
        node.eventLoop.assumeIsolated().execute { [self] in run() }
    }

    /// The read goes first: it pumps the sessions it routes packets to. What the work asks
    /// for while it runs waits for the next task.
    private func run() {
        scheduled = false
        node.tunPump?.readAfterWrite()
        swap(&pumps, &running)
        for session in running { session.runScheduledPump() }
        running.removeAll(keepingCapacity: true)
    }
}
