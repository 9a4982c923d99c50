import NIOCore
import Testing
@testable import BYSTProto

/// Keepalive pings (PROTOCOL.md §5.5): on an idle link only the initiator pings, once per
/// interval, so each side handles one record per link and interval; the responder pings a link
/// only when that stops, or when it wrote records that want confirming; dead links still die.
@Suite struct KeepaliveTests {
    /// Pings and pongs in record payloads.
    private static func count(_ payloads: [ByteBuffer]) throws -> (pings: Int, pongs: Int) {
        var pings = 0, pongs = 0
        for var payload in payloads {
            while let frame = try Frame.decode(from: &payload) {
                if case .ping = frame { pings += 1 }
                if case .pong = frame { pongs += 1 }
            }
        }
        return (pings, pongs)
    }

    /// `pair` run for `steps` steps of 1 ms; what each side wrote on each link.
    private static func run(_ pair: inout SessionPair, steps: Int, dropFromA: Bool = false, dropFromB: Bool = false)
        throws -> (fromA: [ByteBuffer], fromB: [ByteBuffer]) {
        var fromA: [ByteBuffer] = [], fromB: [ByteBuffer] = []
        for _ in 0..<steps {
            pair.now += 1_000_000
            pair.eventsAtA += pair.a.poll(now: pair.now)
            pair.eventsAtB += pair.b.poll(now: pair.now)
            for id in pair.aToB.keys.sorted() {
                while let payload = pair.a.nextPayload(for: id, maxBytes: pair.maxRecord) {
                    fromA.append(payload)
                    if !dropFromA { pair.eventsAtB += try pair.b.receive(payload, from: id, now: pair.now) }
                }
                while let payload = pair.b.nextPayload(for: id, maxBytes: pair.maxRecord) {
                    fromB.append(payload)
                    if !dropFromB { pair.eventsAtA += try pair.a.receive(payload, from: id, now: pair.now) }
                }
            }
        }
        return (fromA, fromB)
    }

    private static var config: SessionConfig {
        var config = SessionConfig()
        config.keepaliveInterval = .milliseconds(100)
        config.deadLinkTimeout = .milliseconds(500)
        return config
    }

    @Test func onAnIdleLinkOnlyTheInitiatorPingsOncePerInterval() throws {
        var pair = SessionPair(config: Self.config, links: 2)
        // The session's first records (its session ack, the instance) want confirming: each
        // side may ping once for them. Then 2 s: 20 intervals on each of 2 links.
        _ = try Self.run(&pair, steps: 300)
        let (fromA, fromB) = try Self.run(&pair, steps: 2000)
        let a = try Self.count(fromA), b = try Self.count(fromB)
        #expect((36...40).contains(a.pings), "initiator pings: \(a.pings)")
        #expect(b.pings == 0, "the responder pinged an idle link \(b.pings) times")
        #expect(b.pongs == a.pings)
        // Nothing else crosses: one record per ping and per pong.
        #expect(fromA.count == a.pings && fromB.count == b.pongs)
        #expect(!pair.eventsAtA.contains { if case .linkDead = $0 { true } else { false } })
        #expect(!pair.eventsAtB.contains { if case .linkDead = $0 { true } else { false } })
        // The initiator keeps measuring the RTT.
        #expect(pair.a.linkStatus.allSatisfy { $0.rtt != nil })
    }

    @Test func theResponderPingsALinkTheInitiatorLeavesSilent() throws {
        var pair = SessionPair(config: Self.config, links: 1)
        _ = try Self.run(&pair, steps: 300)
        // The initiator's records stop arriving (a one-way loss): after two intervals of
        // silence the responder pings, once per interval while its ping is answered…
        let (_, fromB) = try Self.run(&pair, steps: 600, dropFromA: true)
        let b = try Self.count(fromB)
        #expect(b.pings == 1, "a ping stays outstanding until answered: \(b.pings)")
        // …and the silent link dies at the dead-link timeout, not before.
        #expect(pair.eventsAtB.contains(.linkDead(LinkID(0))))
    }

    @Test func theResponderPingsTheLinksItWritesOn() throws {
        var pair = SessionPair(config: Self.config, links: 1)
        // The responder opens a stream and writes to it: its data wants confirming, and its
        // RTT is sampled while it sends.
        let opened = pair.b.openStream(target: "t")
        let id = try #require(opened)
        var bytes = ByteBuffer(repeating: 7, count: 4096)
        pair.b.send(&bytes, on: id)
        var fromB: [ByteBuffer] = []
        for _ in 0..<10 {
            var more = ByteBuffer(repeating: 7, count: 512)
            pair.b.send(&more, on: id)
            fromB += try Self.run(&pair, steps: 100).fromB
            for case .streamData(let stream, let data) in pair.eventsAtA { pair.a.consumed(data.readableBytes, on: stream) }
            pair.eventsAtA.removeAll()
        }
        let b = try Self.count(fromB)
        #expect((8...11).contains(b.pings), "responder pings while writing: \(b.pings)")
        #expect(pair.b.linkStatus.allSatisfy { $0.rtt != nil })
    }

    @Test func aPingOnlyLinkNeedsNoExtraPing() throws {
        // Pongs alone are not records that want confirming: the responder answering the
        // initiator's pings does not start pinging itself (no ping ping-pong).
        var pair = SessionPair(config: Self.config, links: 1)
        _ = try Self.run(&pair, steps: 300)
        let (_, fromB) = try Self.run(&pair, steps: 1000)
        #expect(try Self.count(fromB).pings == 0)
        #expect(pair.b.nextDeadline.map { $0 > pair.now } == true)
    }

    // MARK: Idle links (both sides offered `idleKeepalive`)

    private static var idleConfig: SessionConfig {
        var config = Self.config
        config.idleKeepaliveInterval = .seconds(1)
        return config
    }

    private static func deaths(_ events: [SessionEvent]) -> Int {
        events.count { if case .linkDead = $0 { true } else { false } }
    }

    /// The responder writes `chunks` chunks of 512 bytes, one every 100 ms, which the
    /// initiator consumes: traffic one way, acks the other.
    private static func responderWrites(_ pair: inout SessionPair, chunks: Int) throws -> (fromA: [ByteBuffer], fromB: [ByteBuffer]) {
        let opened = pair.b.openStream(target: "t")
        let id = try #require(opened)
        var fromA: [ByteBuffer] = [], fromB: [ByteBuffer] = []
        for _ in 0..<chunks {
            var more = ByteBuffer(repeating: 7, count: 512)
            pair.b.send(&more, on: id)
            let written = try Self.run(&pair, steps: 100)
            fromA += written.fromA
            fromB += written.fromB
            for case .streamData(let stream, let data) in pair.eventsAtA { pair.a.consumed(data.readableBytes, on: stream) }
            pair.eventsAtA.removeAll { if case .streamData = $0 { true } else { false } }
        }
        return (fromA, fromB)
    }

    @Test func anIdleLinkIsPingedAtTheIdleInterval() throws {
        var pair = SessionPair(config: Self.idleConfig, links: 2, idleKeepalive: true)
        // Idle once a dead-link timeout (500 ms) passed without traffic; then 5 s.
        _ = try Self.run(&pair, steps: 600)
        let (fromA, fromB) = try Self.run(&pair, steps: 5000)
        let a = try Self.count(fromA), b = try Self.count(fromB)
        #expect((8...12).contains(a.pings), "initiator pings on 2 idle links in 5 s: \(a.pings)")
        #expect(b.pings == 0 && b.pongs == a.pings)
        #expect(Self.deaths(pair.eventsAtA) + Self.deaths(pair.eventsAtB) == 0)
    }

    @Test func withoutTheFeatureAnIdleLinkIsPingedEveryInterval() throws {
        var pair = SessionPair(config: Self.idleConfig, links: 1)
        _ = try Self.run(&pair, steps: 600)
        let (fromA, _) = try Self.run(&pair, steps: 5000)
        #expect((45...50).contains(try Self.count(fromA).pings))
    }

    @Test func aSilentIdleLinkDiesAfterTheIdleIntervalAndTheDeadLinkTimeout() throws {
        var pair = SessionPair(config: Self.idleConfig, links: 1, idleKeepalive: true)
        _ = try Self.run(&pair, steps: 2000)
        // Step by step, noting when each side last got a record; then nothing crosses any
        // more (a silent cut). Each side must declare the link dead exactly idle interval +
        // dead-link timeout (1.5 s) after the last record it got — not at the busy rule's 0.5 s.
        let link = LinkID(0), cutAt = pair.now + 700_000_000
        var lastAtA = pair.now, lastAtB = pair.now
        var deadA: Nanoseconds?, deadB: Nanoseconds?
        for _ in 0..<3000 where deadA == nil || deadB == nil {
            pair.now += 1_000_000
            if deadA == nil, pair.a.poll(now: pair.now).contains(.linkDead(link)) { deadA = pair.now }
            if deadB == nil, pair.b.poll(now: pair.now).contains(.linkDead(link)) { deadB = pair.now }
            let cut = pair.now >= cutAt
            while deadA == nil, let payload = pair.a.nextPayload(for: link, maxBytes: pair.maxRecord), !cut {
                _ = try pair.b.receive(payload, from: link, now: pair.now)
                lastAtB = pair.now
            }
            while deadB == nil, let payload = pair.b.nextPayload(for: link, maxBytes: pair.maxRecord), !cut {
                _ = try pair.a.receive(payload, from: link, now: pair.now)
                lastAtA = pair.now
            }
        }
        let a = try #require(deadA) - lastAtA, b = try #require(deadB) - lastAtB
        #expect(a == 1_500_000_000, "initiator: dead \(a) ns after its last record")
        #expect(b == 1_500_000_000, "responder: dead \(b) ns after its last record")
    }

    @Test func theFirstTrafficOnADeadIdleLinkFindsItWithinTheDeadLinkTimeout() throws {
        var pair = SessionPair(config: Self.idleConfig, links: 1, idleKeepalive: true)
        _ = try Self.run(&pair, steps: 1000)
        #expect(pair.a.linkIsIdle(LinkID(0), now: pair.now))
        // The link is cut silently; then the initiator writes on it.
        let opened = pair.a.openStream(target: "t")
        let id = try #require(opened)
        var bytes = ByteBuffer(repeating: 1, count: 1000)
        pair.a.send(&bytes, on: id)
        _ = try Self.run(&pair, steps: 450, dropFromA: true, dropFromB: true)
        #expect(Self.deaths(pair.eventsAtA) == 0, "dead before the dead-link timeout")
        _ = try Self.run(&pair, steps: 100, dropFromA: true, dropFromB: true)
        #expect(pair.eventsAtA.contains(.linkDead(LinkID(0))), "not dead 550 ms after traffic began on it")
    }

    @Test func trafficEndsTheIdleTimeAndTheLinkIdlesAgainAfter() throws {
        var pair = SessionPair(config: Self.idleConfig, links: 1, idleKeepalive: true)
        _ = try Self.run(&pair, steps: 2000)
        #expect(pair.a.linkIsIdle(LinkID(0), now: pair.now) && pair.b.linkIsIdle(LinkID(0), now: pair.now))
        // 2 s of the responder writing: pings at the busy interval again on both sides.
        let busy = try Self.responderWrites(&pair, chunks: 20)
        #expect(!pair.a.linkIsIdle(LinkID(0), now: pair.now) && !pair.b.linkIsIdle(LinkID(0), now: pair.now))
        #expect(try Self.count(busy.fromA).pings >= 15)
        // Then quiet: idle again at both ends, no false death while the two sides switch.
        _ = try Self.run(&pair, steps: 600)
        let quiet = try Self.run(&pair, steps: 4000)
        #expect((3...5).contains(try Self.count(quiet.fromA).pings))
        #expect(Self.deaths(pair.eventsAtA) + Self.deaths(pair.eventsAtB) == 0)
    }
}
