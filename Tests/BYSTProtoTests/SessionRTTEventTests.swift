import Testing
@testable import BYSTProto

/// `SessionEvent.rttMeasured`: one sample per answered keepalive ping, on the link that
/// carried it, as long as the ping was in flight (the runtime's RTT histogram feeds on it).
@Suite struct SessionRTTEventTests {
    @Test func everyAnsweredPingYieldsOneSampleOnItsLink() throws {
        var config = SessionConfig()
        config.keepaliveInterval = .milliseconds(100)
        var pair = SessionPair(config: config, links: 2)
        // 1 ms per step: 600 steps are 600 ms, several pings per link each way.
        for _ in 0..<600 { try pair.step() }
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
}
