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
    private static func run(_ pair: inout SessionPair, steps: Int, dropFromA: Bool = false)
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
                    pair.eventsAtA += try pair.a.receive(payload, from: id, now: pair.now)
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
}
