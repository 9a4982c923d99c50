import NIOCore
import Testing
@testable import BYSTProto

/// The caps a session enforces: streams per session, and send buffers over all streams.
struct SessionLimitTests {
    @Test func streamsBeyondTheCapAreResetAndReported() throws {
        var config = SessionConfig()
        config.maxStreams = 3
        var b = SessionMachine(role: .responder, config: config, now: 0)
        b.linkUp(LinkID(0), now: 0)
        var opens = ByteBuffer()
        for id in stride(from: UInt32(1), through: 9, by: 2) { Frame.open(id: id, window: 1000, target: "t").encode(into: &opens) }
        let events = try b.receive(opens, from: LinkID(0), now: 0)
        #expect(events.filter { if case .streamOpened = $0 { true } else { false } }.count == 3)
        #expect(events.filter { $0 == .limitReached(.streams) }.count == 2)
        #expect(b.streamCount == 3)
        let payload = b.nextPayload(for: LinkID(0), maxBytes: 4096)
        var reply = try #require(payload)
        var frames: [Frame] = []
        while let frame = try Frame.decode(from: &reply) { frames.append(frame) }
        #expect(frames.contains(.reset(id: 7, code: .tooManyStreams)))
        #expect(frames.contains(.reset(id: 9, code: .tooManyStreams)))
        // Our own opens stop at the cap too.
        var a = SessionMachine(role: .initiator, config: config, now: 0)
        var opened: [UInt32?] = []
        for _ in 0..<4 { opened.append(a.openStream(target: "t")) }
        #expect(opened.prefix(3).allSatisfy { $0 != nil })
        #expect(opened[3] == nil)
    }

    /// A peer that keeps opening streams past the cap without reading our refusals cannot
    /// make us queue resets without end: past the control-frame bound the session refuses
    /// the link (a protocol error) instead.
    @Test func refusalsOfStreamsBeyondTheCapAreBounded() throws {
        var config = SessionConfig()
        config.maxStreams = 1
        var b = SessionMachine(role: .responder, config: config, now: 0)
        b.linkUp(LinkID(0), now: 0)
        var id: UInt32 = 1
        var refused = 0
        var failure: SessionError?
        while failure == nil, refused <= SessionMachine.maxQueuedControlFrames + 1 {
            var opens = ByteBuffer()
            for _ in 0..<256 {
                Frame.open(id: id, window: 1000, target: "t").encode(into: &opens)
                id += 2
            }
            do {
                let events = try b.receive(opens, from: LinkID(0), now: 0)
                refused += events.filter { $0 == .limitReached(.streams) }.count
            } catch {
                failure = error
            }
        }
        #expect(failure != nil)
        #expect(refused <= SessionMachine.maxQueuedControlFrames)
    }

    @Test func sendBuffersTogetherStopAtTheSessionCapAndWakeWhenAcknowledged() throws {
        var config = SessionConfig()
        config.sendBufferLimit = 1 << 20
        config.sessionSendBufferLimit = 2 << 20
        var pair = SessionPair(config: config, links: 1)
        var ids: [UInt32] = []
        for index in 0..<4 {
            let opened = pair.a.openStream(target: "s\(index)")
            ids.append(try #require(opened))
        }
        // The peer acknowledges nothing yet: each stream may buffer 1 MiB, all of them 2 MiB.
        var taken = 0
        for id in ids {
            var data = ByteBuffer(bytes: [UInt8](repeating: 7, count: 1 << 20))
            taken += pair.a.send(&data, on: id)
        }
        #expect(taken == 2 << 20)
        #expect(!pair.a.canSend(on: ids[3]))
        let reported = pair.a.pendingEvents()
        #expect(reported == [.limitReached(.sessionBuffer)])
        // Reported once per episode, not per refused call.
        var more = ByteBuffer(bytes: [1, 2, 3])
        let refused = pair.a.send(&more, on: ids[3])
        #expect(refused == 0)
        let again = pair.a.pendingEvents()
        #expect(again.isEmpty)
        // Delivery and consumption at the peer bring acknowledgements: the blocked writers wake.
        var woken: Set<UInt32> = []
        for _ in 0..<50 {
            try pair.step()
            for event in pair.eventsAtB {
                if case .streamData(let id, let bytes) = event { pair.b.consumed(bytes.readableBytes, on: id) }
            }
            pair.eventsAtB.removeAll()
            for event in pair.eventsAtA { if case .streamWritable(let id) = event { woken.insert(id) } }
            pair.eventsAtA.removeAll()
        }
        #expect(woken.isSuperset(of: [ids[2], ids[3]]), "woken: \(woken)")
        #expect(pair.a.canSend(on: ids[3]))
    }

    @Test func aResetStreamGivesItsBufferBack() throws {
        var config = SessionConfig()
        config.sendBufferLimit = 1 << 20
        config.sessionSendBufferLimit = 1 << 20
        var a = SessionMachine(role: .initiator, config: config, now: 0)
        a.linkUp(LinkID(0), now: 0)
        let firstOpened = a.openStream(target: "a")
        let secondOpened = a.openStream(target: "b")
        let first = try #require(firstOpened)
        let second = try #require(secondOpened)
        var data = ByteBuffer(bytes: [UInt8](repeating: 1, count: 1 << 20))
        let filled = a.send(&data, on: first)
        #expect(filled == 1 << 20)
        var other = ByteBuffer(bytes: [1])
        let stopped = a.send(&other, on: second)
        #expect(stopped == 0)
        _ = a.pendingEvents()
        a.reset(first, code: .cancelled)
        let woken = a.pendingEvents()
        #expect(woken == [.streamWritable(id: second)])
        let taken = a.send(&other, on: second)
        #expect(taken == 1)
    }
}
