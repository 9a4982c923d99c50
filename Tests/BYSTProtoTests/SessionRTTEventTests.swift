import NIOCore
import Testing
@testable import BYSTProto

/// `SessionEvent.rttMeasured`: one sample per answered keepalive ping, on the link that
/// carried it, as long as the ping was in flight (the runtime's RTT histogram feeds on it).
@Suite struct SessionRTTEventTests {
    @Test func everyAnsweredPingYieldsOneSampleOnItsLink() throws {
        var config = SessionConfig()
        config.keepaliveInterval = .milliseconds(100)
        var pair = SessionPair(config: config, links: 2)
        // Both sides write on both links (a stream homed on each, each way), so both ping
        // there (PROTOCOL.md §5.5).
        var streams: [(side: Int, id: UInt32)] = []
        for side in [0, 1] {
            for _ in 0..<2 {
                let opened = side == 0 ? pair.a.openStream(target: "a") : pair.b.openStream(target: "b")
                streams.append((side, try #require(opened)))
            }
        }
        // 1 ms per step: 600 steps are 600 ms, several pings per link each way.
        for step in 0..<600 {
            if step % 50 == 0 {
                for (side, id) in streams {
                    var bytes = ByteBuffer(repeating: 1, count: 64)
                    if side == 0 { pair.a.send(&bytes, on: id) } else { pair.b.send(&bytes, on: id) }
                }
            }
            try pair.step()
        }
        for events in [pair.eventsAtA, pair.eventsAtB] {
            var samples: [LinkID: [Duration]] = [:]
            for case .rttMeasured(let link, let rtt) in events { samples[link, default: []].append(rtt) }
            #expect(Set(samples.keys) == [LinkID(0), LinkID(1)])
            for (link, rtts) in samples {
                #expect(rtts.count >= 4, "link \(link): \(rtts.count) samples")
                // A ping and its pong each wait for the next step (1 ms) to be delivered.
                #expect(rtts.allSatisfy { $0 > .zero && $0 <= .milliseconds(3) }, "link \(link): \(rtts)")
            }
        }
    }

    /// `pingUnanswered`: short while pongs come; grows once what we write stops arriving
    /// while the peer's traffic still does (a proxy that stopped passing our side on).
    @Test func aPingUnansweredWhileTheLinkStillReceivesShowsOurWritesStoppedArriving() throws {
        var config = SessionConfig()
        config.keepaliveInterval = .milliseconds(100)
        var pair = SessionPair(config: config, links: 1)
        let link = LinkID(0)
        let opened = pair.a.openStream(target: "a")
        let id = try #require(opened)
        func write(_ step: Int) {
            guard step % 50 == 0 else { return }
            var bytes = ByteBuffer(repeating: 1, count: 64)
            pair.a.send(&bytes, on: id)
        }
        for step in 0..<300 {
            write(step)
            try pair.step()
        }
        #expect((pair.a.pingUnanswered(link, now: pair.now) ?? 0) <= 3_000_000)
        // From here on nothing `a` writes arrives; what `b` sends still does.
        var received = 0
        for step in 0..<2_000 {
            write(step)
            pair.now += 1_000_000
            _ = pair.a.poll(now: pair.now)
            _ = pair.b.poll(now: pair.now)
            while pair.a.nextPayload(for: link, maxBytes: pair.maxRecord) != nil {}
            while let payload = pair.b.nextPayload(for: link, maxBytes: pair.maxRecord) {
                _ = try pair.a.receive(payload, from: link, now: pair.now)
                received += 1
            }
        }
        #expect(received > 0, "b sent nothing: the test proves nothing")
        let waited = try #require(pair.a.pingUnanswered(link, now: pair.now))
        #expect(waited >= 1_800_000_000, "ping unanswered for \(waited) ns")
        #expect(pair.a.pingUnanswered(LinkID(7), now: pair.now) == nil)
    }
}
