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

    /// What `a` writes stops arriving while `b`'s traffic still does (a proxy that stopped
    /// passing `a`'s side on): `b` declares the link dead and, where close reasons were
    /// negotiated, queues a `linkClosing(deadLink)` that tells `a` why; without them, nothing.
    @Test(arguments: [true, false]) func aPeerThatHearsNothingClosesTheLinkSayingWhy(closeReasons: Bool) throws {
        var config = SessionConfig()
        config.keepaliveInterval = .milliseconds(100)
        var pair = SessionPair(config: config, links: 1, closeReasons: closeReasons)
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
        // From here on nothing `a` writes arrives; what `b` sends still does.
        var atA: [SessionEvent] = [], atB: [SessionEvent] = []
        for step in 0..<(Int(config.deadLinkTimeout.nanoseconds / 1_000_000) + 100) {
            write(step)
            pair.now += 1_000_000
            atA += pair.a.poll(now: pair.now)
            atB += pair.b.poll(now: pair.now)
            while pair.a.nextPayload(for: link, maxBytes: pair.maxRecord) != nil {}
            while let payload = pair.b.nextPayload(for: link, maxBytes: pair.maxRecord) {
                atA += try pair.a.receive(payload, from: link, now: pair.now)
            }
            if atB.contains(.linkDead(link)) { break }
        }
        // The frame was queued with the event (the runtime writes it before closing), and the
        // step that declared the link dead delivered it.
        #expect(atB.contains(.linkDead(link)), "b never declared the link dead")
        #expect(atA.contains(.peerClosingLink(link, .deadLink)) == closeReasons, "\(atA.suffix(3))")
        #expect(!atA.contains(.linkDead(link)), "a still hears b: its link is not dead")
    }

    /// A `linkClosing` on a link that did not negotiate close reasons is a protocol error.
    @Test func aCloseReasonWithoutTheFeatureClosesTheLink() throws {
        var pair = SessionPair(links: 1)
        var payload = ByteBuffer()
        Frame.linkClosing(.deadLink).encode(into: &payload)
        #expect(throws: SessionError.frame(.unknownKind(Frame.Kind.linkClosing.rawValue))) {
            _ = try pair.a.receive(payload, from: LinkID(0), now: pair.now)
        }
    }
}
