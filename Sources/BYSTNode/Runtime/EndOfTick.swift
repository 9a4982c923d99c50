// Work that waits for the end of the current event-loop tick, run by one queued task:
//
//   LoopPackets: packets for the TUN ─┐
//   SessionRuntime.schedulePump ──────┴▶ EndOfTick ─▶ one `execute` ─▶ the pumps, then the packets to the plane
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

    /// Packets received for the TUN go to the data plane at the end of this tick (LoopPackets
    /// keeps its own flag).
    func wantTunFlush() {
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

    /// What the work asks for while it runs waits for the next task (the packets go last:
    /// nothing the pumps do adds any).
    private func run() {
        scheduled = false
        swap(&pumps, &running)
        for session in running { session.runScheduledPump() }
        running.removeAll(keepingCapacity: true)
        node.tun?.loopPackets.flushToTun()
    }
}
