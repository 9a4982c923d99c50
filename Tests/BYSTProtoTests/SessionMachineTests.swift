import NIOCore
import Testing
@testable import BYSTProto

/// Two session machines joined by simulated links whose in-flight records can be cut.
struct SessionPair {
    var a: SessionMachine
    var b: SessionMachine
    var now: Nanoseconds = 1_000_000_000
    /// In-flight record payloads per link and direction.
    var aToB: [LinkID: [ByteBuffer]] = [:]
    var bToA: [LinkID: [ByteBuffer]] = [:]
    var nextLinkID = 0
    var eventsAtA: [SessionEvent] = []
    var eventsAtB: [SessionEvent] = []
    let maxRecord = 16 * 1024

    /// `idleKeepalive`: both sides negotiated `LinkFeatures.idleKeepalive` on every link.
    let idleKeepalive: Bool
    /// `closeReasons`: both sides negotiated `LinkFeatures.closeReasons` on every link.
    let closeReasons: Bool

    init(config: SessionConfig = .init(), links: Int, idleKeepalive: Bool = false, closeReasons: Bool = false) {
        a = SessionMachine(role: .initiator, config: config, now: now)
        b = SessionMachine(role: .responder, config: config, now: now, instance: 42)
        self.idleKeepalive = idleKeepalive
        self.closeReasons = closeReasons
        for _ in 0..<links { addLink() }
    }

    mutating func addLink() {
        let id = LinkID(nextLinkID)
        nextLinkID += 1
        a.linkUp(id, now: now, idleKeepalive: idleKeepalive, closeReasons: closeReasons)
        b.linkUp(id, now: now, idleKeepalive: idleKeepalive, closeReasons: closeReasons)
        aToB[id] = []
        bToA[id] = []
    }

    /// Streams from `a` to `b` carrying a known payload each, and what `b` got of them.
    struct Transfer {
        var outgoing: [UInt32: ByteBuffer] = [:]
        var expected: [UInt32: [UInt8]] = [:]
        var received: [UInt32: [UInt8]] = [:]
        var finished: Set<UInt32> = []
    }

    /// Opens `count` streams at `a`; stream `index` is to carry `payload(index)`.
    mutating func openTransfer(streams count: Int, payload: (Int) -> [UInt8]) throws -> Transfer {
        var transfer = Transfer()
        for index in 0..<count {
            let opened = a.openStream(target: "echo:\(index)")
            let id = try #require(opened)
            let bytes = payload(index)
            transfer.outgoing[id] = ByteBuffer(bytes: bytes)
            transfer.expected[id] = bytes
        }
        return transfer
    }

    /// Gives `a`'s streams what they still have to send (as much as each takes) and
    /// finishes a stream once all of it was taken.
    mutating func feed(_ transfer: inout Transfer) {
        for id in transfer.outgoing.keys.sorted() {
            guard var rest = transfer.outgoing[id] else { continue }
            a.send(&rest, on: id)
            if rest.readableBytes == 0 {
                a.finish(id)
                transfer.outgoing[id] = nil
            } else {
                transfer.outgoing[id] = rest
            }
        }
    }

    /// Takes `b`'s events: stream bytes are collected and consumed, FINs answered; the
    /// other events are returned.
    mutating func collect(_ transfer: inout Transfer) -> [SessionEvent] {
        var others: [SessionEvent] = []
        for event in eventsAtB {
            switch event {
            case .streamData(let id, let bytes):
                transfer.received[id, default: []] += Array(bytes.readableBytesView)
                b.consumed(bytes.readableBytes, on: id)
            case .streamFinished(let id):
                transfer.finished.insert(id)
                b.finish(id)
            default: others.append(event)
            }
        }
        eventsAtB.removeAll()
        return others
    }

    /// Cuts a link: whatever was in flight on it is lost.
    mutating func cut(_ id: LinkID) {
        aToB[id] = nil
        bToA[id] = nil
        a.linkDown(id, now: now)
        b.linkDown(id, now: now)
    }

    /// One round: each side emits up to `records` records per link, then some are delivered.
    mutating func step(records: Int = 4, deliverFraction: Double = 1.0) throws {
        now += 1_000_000
        eventsAtA += a.poll(now: now)
        eventsAtB += b.poll(now: now)
        for id in aToB.keys.sorted() {
            for _ in 0..<records {
                guard let payload = a.nextPayload(for: id, maxBytes: maxRecord) else { break }
                aToB[id]?.append(payload)
            }
            for _ in 0..<records {
                guard let payload = b.nextPayload(for: id, maxBytes: maxRecord) else { break }
                bToA[id]?.append(payload)
            }
        }
        for id in aToB.keys.sorted() {
            let deliverA = Int(Double(aToB[id]?.count ?? 0) * deliverFraction + 0.999)
            for _ in 0..<deliverA {
                guard let payload = aToB[id]?.first else { break }
                aToB[id]?.removeFirst()
                eventsAtB += try b.receive(payload, from: id, now: now)
            }
            let deliverB = Int(Double(bToA[id]?.count ?? 0) * deliverFraction + 0.999)
            for _ in 0..<deliverB {
                guard let payload = bToA[id]?.first else { break }
                bToA[id]?.removeFirst()
                eventsAtA += try a.receive(payload, from: id, now: now)
            }
        }
    }
}

@Suite struct SessionMachineTests {
    func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
        var state = seed &* 2_654_435_761 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
    }

    @Test func frameCodecRoundTripsAndRejectsJunk() throws {
        let frames: [Frame] = [
            .open(id: 7, window: 1 << 20, target: "db.internal:5432"), .data(id: 7, offset: 99, bytes: ByteBuffer(string: "xyz")),
            .ack(id: 0, received: 5, limit: 9), .fin(id: 3, finalOffset: 12), .reset(id: 3, code: .connectFailed),
            .ping(42), .pong(42), .goAway(code: 1), .instance(9), .retire, .linkClosing(.deadLink), .linkClosing(LinkCloseReason(rawValue: 77)),
            .packet(ByteBuffer(bytes: [0x45, 0, 0, 20])), .offloadPacket(ByteBuffer(bytes: [UInt8](repeating: 1, count: 10) + [0x45])),
            .open(id: 9, window: 1, target: String(repeating: "x", count: 300)),
        ]
        for frame in frames {
            var encoded = ByteBuffer()
            frame.encode(into: &encoded)
            #expect(frame.encodedSize == encoded.readableBytes, "\(frame)")
        }
        var buffer = ByteBuffer()
        for frame in frames { frame.encode(into: &buffer) }
        var decoded: [Frame] = []
        while let frame = try Frame.decode(from: &buffer) { decoded.append(frame) }
        // The long target is cut to `maxTargetBytes` on the wire.
        #expect(decoded.dropLast() == frames.dropLast())
        #expect(decoded.last == .open(id: 9, window: 1, target: String(repeating: "x", count: Frame.maxTargetBytes)))
        var unknown = ByteBuffer(bytes: [0x7F])
        #expect(throws: FrameError.unknownKind(0x7F)) { try Frame.decode(from: &unknown) }
        var all = ByteBuffer()
        for frame in frames { frame.encode(into: &all) }
        let bytes = Array(all.readableBytesView)
        // Every truncation either decodes whole frames so far or throws; never crashes.
        for cut in 0..<bytes.count {
            var partial = ByteBuffer(bytes: bytes.prefix(cut))
            do { while try Frame.decode(from: &partial) != nil {} } catch {}
        }
    }

    @Test func streamsSurviveRandomLinkCutsWithoutLossOrDuplication() throws {
        var pair = SessionPair(links: 4)
        let streamCount = 8
        let size = 1_000_000
        var transfer = try pair.openTransfer(streams: streamCount) { pattern(size, seed: UInt32($0 + 1)) }
        var cuts = 0
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            pair.feed(&transfer)
            try pair.step(records: 2, deliverFraction: 0.6)
            _ = pair.collect(&transfer)
            if round % 3 == 1, let victim = pair.aToB.keys.randomElement(using: &generator) {
                pair.cut(victim)
                pair.addLink()
                cuts += 1
            }
            if transfer.finished.count == streamCount && pair.a.streamCount == 0 && pair.b.streamCount == 0 { break }
        }
        print("session simulation: \(cuts) link cuts survived")
        #expect(cuts > 20)
        #expect(transfer.finished.count == streamCount)
        for (id, bytes) in transfer.expected {
            #expect(transfer.received[id]?.count == bytes.count, "stream \(id) length")
            #expect(transfer.received[id] == bytes, "stream \(id) content differs")
        }
        #expect(pair.a.streamCount == 0 && pair.b.streamCount == 0, "streams not closed")
    }

    @Test func aStalledReaderDoesNotBlockOtherStreams() throws {
        var config = SessionConfig()
        config.streamWindow = 1 << 20
        config.sendBufferLimit = 1 << 20
        var pair = SessionPair(config: config, links: 1)
        let stalledOpened = pair.a.openStream(target: "stalled")
        let stalled = try #require(stalledOpened)
        let flowingOpened = pair.a.openStream(target: "flowing")
        let flowing = try #require(flowingOpened)
        var flowingReceived = 0
        var stalledReceived = 0
        var stalledBuffer = ByteBuffer(bytes: pattern(8 << 20, seed: 9))
        for _ in 0..<1000 {
            pair.a.send(&stalledBuffer, on: stalled)
            var chunk = ByteBuffer(bytes: pattern(16 * 1024, seed: 3))
            if pair.a.canSend(on: flowing) { pair.a.send(&chunk, on: flowing) }
            try pair.step()
            for event in pair.eventsAtB {
                if case .streamData(let id, let bytes) = event {
                    if id == flowing {
                        flowingReceived += bytes.readableBytes
                        pair.b.consumed(bytes.readableBytes, on: id)
                    } else {
                        stalledReceived += bytes.readableBytes  // never consumed
                    }
                }
            }
            pair.eventsAtB.removeAll()
        }
        // The stalled stream stops at its window; the other keeps flowing far beyond it.
        #expect(stalledReceived <= 1 << 20)
        // Beyond the initial session credit (4 MiB): the session window was announced.
        #expect(flowingReceived > 12 << 20)
        // The sender buffers no more than its limit for the stalled stream.
        #expect(!pair.a.canSend(on: stalled))
    }

    @Test func keepalivesMeasureRTTAndSilentLinksAreDeclaredDead() throws {
        var config = SessionConfig()
        config.keepaliveInterval = .milliseconds(100)
        config.deadLinkTimeout = .milliseconds(500)
        var pair = SessionPair(config: config, links: 2)
        for _ in 0..<300 { try pair.step() }
        #expect(pair.a.linkStatus.allSatisfy { $0.rtt != nil })
        // Link 0 goes silent in both directions: both sides report it dead.
        let silent = LinkID(0)
        pair.aToB[silent] = nil
        pair.bToA[silent] = nil
        var deadAtA = false
        for _ in 0..<800 {
            try pair.step()
            if pair.eventsAtA.contains(.linkDead(silent)) { deadAtA = true; break }
        }
        #expect(deadAtA)
    }

    @Test func sessionWithoutLinksExpiresAfterLinger() throws {
        var config = SessionConfig()
        config.linger = .seconds(2)
        var a = SessionMachine(role: .initiator, config: config, now: 0)
        a.linkUp(LinkID(1), now: 0)
        let idOpened = a.openStream(target: "x")
        let id = try #require(idOpened)
        a.linkDown(LinkID(1), now: 1_000_000_000)
        #expect(a.poll(now: 2_500_000_000).isEmpty)
        #expect(a.nextDeadline == 3_000_000_000)
        let events = a.poll(now: 3_000_000_000)
        #expect(events == [.streamReset(id: id, code: .sessionExpired), .expired])
    }

    @Test func flowControlViolationsAndBadIDsAreErrors() throws {
        var b = SessionMachine(role: .responder, now: 0)
        b.linkUp(LinkID(0), now: 0)
        var open = ByteBuffer()
        Frame.open(id: 1, window: 1000, target: "t").encode(into: &open)
        _ = try b.receive(open, from: LinkID(0), now: 0)
        var tooMuch = ByteBuffer()
        Frame.data(id: 1, offset: SessionConfig().streamWindow, bytes: ByteBuffer(string: "x")).encode(into: &tooMuch)
        #expect(throws: SessionError.flowControlViolation(stream: 1)) { try b.receive(tooMuch, from: LinkID(0), now: 0) }
        var wrongParity = ByteBuffer()
        Frame.open(id: 2, window: 1000, target: "t").encode(into: &wrongParity)
        #expect(throws: SessionError.badStreamID(2)) { try b.receive(wrongParity, from: LinkID(0), now: 0) }
        // Data for a peer stream this side never saw (it restarted): answered with a reset.
        var neverOpened = ByteBuffer()
        Frame.data(id: 9, offset: 0, bytes: ByteBuffer(string: "x")).encode(into: &neverOpened)
        _ = try b.receive(neverOpened, from: LinkID(0), now: 0)
        let payload = b.nextPayload(for: LinkID(0), maxBytes: 4096)
        var reply = try #require(payload)
        var replies: [Frame] = []
        while let frame = try Frame.decode(from: &reply) { replies.append(frame) }
        #expect(replies.contains(.reset(id: 9, code: .sessionExpired)))
        // Our own (even) ids that we never opened are a protocol error.
        var ownNeverOpened = ByteBuffer()
        Frame.data(id: 20, offset: 0, bytes: ByteBuffer(string: "x")).encode(into: &ownNeverOpened)
        #expect(throws: SessionError.badStreamID(20)) { try b.receive(ownNeverOpened, from: LinkID(0), now: 0) }
        var finMoves = ByteBuffer()
        Frame.fin(id: 1, finalOffset: 5).encode(into: &finMoves)
        Frame.fin(id: 1, finalOffset: 6).encode(into: &finMoves)
        #expect(throws: SessionError.finalOffsetViolation(stream: 1)) { try b.receive(finMoves, from: LinkID(0), now: 0) }
    }

    @Test func aRestartedResponderIsDetectedAndTheSessionStartsOver() throws {
        var pair = SessionPair(links: 1)
        let opened = pair.a.openStream(target: "t")
        let id = try #require(opened)
        var data = ByteBuffer(bytes: pattern(100_000, seed: 1))
        pair.a.send(&data, on: id)
        for _ in 0..<5 { try pair.step() }
        #expect(pair.b.streamCount == 1)
        // The responder restarts: fresh state, new instance; the old link is gone.
        pair.cut(LinkID(0))
        pair.b = SessionMachine(role: .responder, now: pair.now, instance: 99)
        pair.eventsAtA.removeAll()
        pair.addLink()
        for _ in 0..<5 { try pair.step() }
        #expect(pair.eventsAtA.contains(.streamReset(id: id, code: .sessionExpired)))
        #expect(pair.a.streamCount == 0)
        // The session works again from scratch: a new stream gets id 1 and flows.
        let again = pair.a.openStream(target: "t2")
        #expect(again == 1)
        var more = ByteBuffer(bytes: pattern(1000, seed: 2))
        pair.a.send(&more, on: 1)
        pair.eventsAtB.removeAll()
        for _ in 0..<5 { try pair.step() }
        #expect(pair.eventsAtB.contains(.streamOpened(id: 1, target: "t2")))
    }
}
