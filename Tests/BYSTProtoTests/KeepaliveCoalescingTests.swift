import NIOCore
import Testing
@testable import BYSTProto

/// An idle link's keepalive (PROTOCOL.md §5.5): the initiator answers a ping with its pong and
/// its own ping in one write, and its next ping is due 1¼ intervals later, so its pings ride on
/// the responder's: it writes once per interval instead of twice (a split-mode link sends one
/// POST a second instead of two, §6.3).
@Suite struct KeepaliveCoalescingTests {
    /// Runs an idle session of one link for `seconds` in 1 ms steps, the two sides' keepalive
    /// timers `offset` apart; returns the records each side wrote, and the events.
    func idle(seconds: Int, offset: Nanoseconds) throws -> (writesA: Int, writesB: Int, events: [SessionEvent]) {
        let link = LinkID(0)
        var now: Nanoseconds = 1_000_000_000
        var a = SessionMachine(role: .initiator, config: SessionConfig(), now: now)
        var b = SessionMachine(role: .responder, config: SessionConfig(), now: now, instance: 7)
        a.linkUp(link, now: now)
        b.linkUp(link, now: now + offset)
        var writesA = 0, writesB = 0, events: [SessionEvent] = []
        var inFlightAB: [ByteBuffer] = [], inFlightBA: [ByteBuffer] = []
        for _ in 0..<(seconds * 1000) {
            now += 1_000_000
            events += a.poll(now: now) + b.poll(now: now)
            // One write per side per step: what it has queued goes as one record (a flush).
            if let payload = a.nextPayload(for: link, maxBytes: 16 * 1024) { writesA += 1; inFlightAB.append(payload) }
            if let payload = b.nextPayload(for: link, maxBytes: 16 * 1024) { writesB += 1; inFlightBA.append(payload) }
            // Delivered after 1 ms.
            for payload in inFlightAB { events += try b.receive(payload, from: link, now: now) }
            for payload in inFlightBA { events += try a.receive(payload, from: link, now: now) }
            inFlightAB.removeAll()
            inFlightBA.removeAll()
        }
        return (writesA, writesB, events)
    }

    @Test(arguments: [Nanoseconds(100_000_000), 400_000_000, 700_000_000])
    func idleInitiatorWritesOncePerInterval(offset: Nanoseconds) throws {
        let (writesA, writesB, events) = try idle(seconds: 20, offset: offset)
        // Keepalive 1 s: 20 intervals. Without the coalescing each side writes its ping and,
        // apart from it, its pong: ≈ 40 writes each, as the responder still does.
        #expect(writesA <= 22, "the initiator wrote \(writesA) records in 20 s")
        #expect(writesB >= 36, "the responder wrote \(writesB) records in 20 s")
        // Both sides still ping about once a second, every ping is answered, no link dies.
        var samples = 0
        for case .rttMeasured(_, let rtt) in events {
            samples += 1
            #expect(rtt <= .milliseconds(3))
        }
        #expect(samples >= 36, "\(samples) RTT samples in 20 s")
        #expect(!events.contains { if case .linkDead = $0 { true } else { false } })
    }
}
