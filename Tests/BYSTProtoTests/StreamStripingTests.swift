import NIOCore
import Testing
@testable import BYSTProto

/// Striping one stream over several links (PROTOCOL.md §5.3, "Striping"), on simulated links
/// of different delays and rates (`StripeNet`).
@Suite struct StreamStripingTests {
    @Test func reorderingAcrossLinksDeliversInOrder() throws {
        // A slow, long link next to a fast, short one: chunks overtake each other.
        var net = StripeNet(links: [(delayMs: 30, mbPerSecond: 8), (delayMs: 2, mbPerSecond: 8)])
        let stream = try net.open()
        let bytes = stripePattern(3 << 20, seed: 1)
        try net.transfer(bytes, on: stream)
        #expect(net.finished.contains(stream))
        #expect(net.received[stream] == bytes ? true : false)
        #expect(net.dataBytes(on: 0, stream: stream) > 0 && net.dataBytes(on: 1, stream: stream) > 0)
        #expect(net.reorderedFrames > 0, "both links carried data, so some frames must have overtaken others")
        #expect(net.maxHeld > 0)
    }

    @Test func stripingAddsUpTheLinksRates() throws {
        // Four equal links, each capped: one stream should move close to four times one link.
        func duration(links: Int) throws -> Double {
            var net = StripeNet(links: Array(repeating: (delayMs: 5, mbPerSecond: 4), count: links))
            let stream = try net.open()
            let start = net.now
            try net.transfer(stripePattern(4 << 20, seed: 2), on: stream)
            #expect(net.finished.contains(stream))
            return Double(net.now - start)
        }
        let one = try duration(links: 1), four = try duration(links: 4)
        #expect(one / four > 3.0, "4 links took \(four / 1e6) ms, 1 link \(one / 1e6) ms")
    }

    @Test func aLinkDyingMidStripeLosesNothing() throws {
        var net = StripeNet(links: [(delayMs: 10, mbPerSecond: 6), (delayMs: 4, mbPerSecond: 6), (delayMs: 7, mbPerSecond: 6)])
        let stream = try net.open()
        let bytes = stripePattern(4 << 20, seed: 3)
        var cutWhileCarrying = false
        try net.transfer(bytes, on: stream) { net, tick in
            // Once the stream is spread, kill a link that is not its home, with its records in flight.
            guard !cutWhileCarrying, tick > 100, let home = net.a.streams[stream]?.link else { return }
            guard let victim = net.links.firstIndex(where: { $0.id != home && !$0.aToB.isEmpty && ($0.dataBytes[stream] ?? 0) > 0 })
            else { return }
            cutWhileCarrying = true
            net.cut(victim)
        }
        #expect(cutWhileCarrying)
        #expect(net.finished.contains(stream))
        #expect(net.received[stream]?.count == bytes.count)
        #expect(net.received[stream] == bytes ? true : false)
    }

    @Test func theHomeLinkDyingMidStripeLosesNothing() throws {
        var net = StripeNet(links: [(delayMs: 3, mbPerSecond: 5), (delayMs: 9, mbPerSecond: 5)])
        let stream = try net.open()
        let bytes = stripePattern(3 << 20, seed: 4)
        var cut = false
        try net.transfer(bytes, on: stream) { net, tick in
            guard !cut, tick > 150, let home = net.a.streams[stream]?.link,
                  let index = net.links.firstIndex(where: { $0.id == home }), !net.links[index].aToB.isEmpty else { return }
            cut = true
            net.cut(index)
        }
        #expect(cut)
        #expect(net.received[stream] == bytes ? true : false)
    }

    @Test func theSenderNeverExceedsTheWindowAndHeldBytesStayWithinIt() throws {
        var config = SessionConfig()
        config.streamWindow = 256 * 1024
        config.sendBufferLimit = 256 * 1024
        var net = StripeNet(config: config, links: [(delayMs: 20, mbPerSecond: 4), (delayMs: 1, mbPerSecond: 40)])
        net.consuming = false // the reader stalls: the window runs out
        let stream = try net.open()
        try net.transfer(stripePattern(1 << 20, seed: 5), on: stream, ticks: 2000)
        #expect(!net.finished.contains(stream))
        #expect(net.sentPastLimit == 0)
        #expect(net.received[stream]?.count == 256 * 1024, "exactly one window is delivered, then the sender waits")
        #expect(net.maxHeld > 0 && net.maxHeld <= 256 * 1024)
    }

    @Test func aReceiverRefusesHeldBytesBeyondTheWindow() throws {
        var config = SessionConfig()
        config.streamWindow = 256 * 1024
        var b = SessionMachine(role: .responder, config: config, now: 0, instance: 1)
        b.linkUp(LinkID(0), now: 0, striping: true)
        b.linkUp(LinkID(1), now: 0, striping: true)
        var open = ByteBuffer()
        Frame.open(id: 1, window: 1 << 20, target: "t:1").encode(into: &open)
        _ = try b.receive(open, from: LinkID(0), now: 1)
        // Within the window, ahead of a gap: held, not delivered.
        let ahead = Frame.data(id: 1, offset: 100_000, bytes: ByteBuffer(repeating: 1, count: 1000))
        var record = ByteBuffer()
        ahead.encode(into: &record)
        let events = try b.receive(record, from: LinkID(1), now: 2)
        #expect(!events.contains { if case .streamData = $0 { true } else { false } })
        // Ending past the window: a flow-control violation even though nothing before it arrived.
        var beyond = ByteBuffer()
        Frame.data(id: 1, offset: 256 * 1024 - 10, bytes: ByteBuffer(repeating: 2, count: 11)).encode(into: &beyond)
        #expect(throws: SessionError.flowControlViolation(stream: 1)) { try b.receive(beyond, from: LinkID(1), now: 3) }
    }

    @Test func heldFramesFillGapsDropDuplicatesAndWaitForTheFin() throws {
        var b = SessionMachine(role: .responder, now: 0, instance: 1)
        b.linkUp(LinkID(0), now: 0, striping: true)
        var delivered: [UInt8] = []
        var finished = false
        func feed(_ frames: [Frame]) throws {
            var record = ByteBuffer()
            for frame in frames { frame.encode(into: &record) }
            for event in try b.receive(record, from: LinkID(0), now: 1) {
                if case .streamData(_, let bytes) = event { delivered += Array(bytes.readableBytesView) }
                if case .streamFinished = event { finished = true }
            }
        }
        let bytes = stripePattern(100, seed: 6)
        func slice(_ range: Range<Int>) -> Frame { .data(id: 1, offset: UInt64(range.lowerBound), bytes: ByteBuffer(bytes: bytes[range])) }
        try feed([.open(id: 1, window: 1 << 20, target: "t:1")])
        try feed([slice(60..<80), .fin(id: 1, finalOffset: 100), slice(80..<100)])
        #expect(delivered.isEmpty && !finished)
        try feed([slice(30..<70)]) // overlaps a held frame
        try feed([slice(65..<90)]) // a duplicate of held bytes
        #expect(delivered.isEmpty)
        try feed([slice(0..<40)]) // fills the gap and overlaps what is held
        #expect(delivered == bytes ? true : false)
        #expect(finished)
        #expect(b.streams[1]?.reorder.isEmpty ?? true)
    }

    @Test func slicedIntoSliversAStreamClosesTheLink() throws {
        var b = SessionMachine(role: .responder, now: 0, instance: 1)
        b.linkUp(LinkID(0), now: 0, striping: true)
        var record = ByteBuffer()
        Frame.open(id: 1, window: 1 << 20, target: "t:1").encode(into: &record)
        // 2 KiB held frames with gaps between them, past a gap at 0: accepted however many.
        let sizeable = 2 * ReorderBuffer.minAverageChunk, frames = 2 * ReorderBuffer.freeChunks
        for index in 0..<frames {
            Frame.data(id: 1, offset: UInt64(10 + 2 * sizeable * index), bytes: ByteBuffer(repeating: 0, count: sizeable)).encode(into: &record)
        }
        _ = try b.receive(record, from: LinkID(0), now: 1)
        // Then one-byte slivers: held while the frames average at least 1 KiB (128 of them here).
        var slivers = ByteBuffer()
        let base = UInt64(10 + 2 * sizeable * frames)
        for index in 0..<frames {
            Frame.data(id: 1, offset: base + UInt64(2 * index), bytes: ByteBuffer(repeating: 0, count: 1)).encode(into: &slivers)
        }
        _ = try b.receive(slivers, from: LinkID(0), now: 2)
        var one = ByteBuffer()
        Frame.data(id: 1, offset: base + UInt64(2 * frames), bytes: ByteBuffer(repeating: 0, count: 1)).encode(into: &one)
        #expect(throws: SessionError.tooManyHeldFrames(stream: 1)) { try b.receive(one, from: LinkID(0), now: 3) }
    }

    @Test func smallInteractiveStreamsStayOnOneLink() throws {
        var net = StripeNet(links: [(delayMs: 30, mbPerSecond: 2), (delayMs: 1, mbPerSecond: 50), (delayMs: 1, mbPerSecond: 50)])
        let stream = try net.open()
        var expected: [UInt8] = []
        // Request-sized writes, each answered before the next: never 64 KiB buffered.
        for round in 0..<40 {
            var write = ByteBuffer(bytes: stripePattern(2000, seed: UInt32(round)))
            expected += Array(write.readableBytesView)
            net.a.send(&write, on: stream)
            for _ in 0..<200 where net.received[stream]?.count != expected.count { try net.tick() }
        }
        #expect(net.received[stream] == expected ? true : false)
        let carrying = net.links.indices.filter { net.dataBytes(on: $0, stream: stream) > 0 }
        #expect(carrying.count == 1)
        #expect(net.reorderedFrames == 0)
    }

    @Test func theSchedulerPrefersTheFasterLink() throws {
        // Link 0 (the stream's home) is slow; link 1 ten times faster.
        var net = StripeNet(links: [(delayMs: 5, mbPerSecond: 2), (delayMs: 5, mbPerSecond: 20)])
        let stream = try net.open()
        let bytes = stripePattern(4 << 20, seed: 8)
        try net.transfer(bytes, on: stream)
        #expect(net.received[stream] == bytes ? true : false)
        let slow = net.dataBytes(on: 0, stream: stream), fast = net.dataBytes(on: 1, stream: stream)
        #expect(fast > 5 * slow, "fast link \(fast) bytes, slow link \(slow) bytes")
    }

    @Test func withoutTheFeatureAStreamStaysOnItsLink() throws {
        // A peer that did not offer streamStriping gets every stream on one link, as before.
        var net = StripeNet(links: [(delayMs: 5, mbPerSecond: 2), (delayMs: 5, mbPerSecond: 20)], striping: false)
        let stream = try net.open()
        let bytes = stripePattern(1 << 20, seed: 9)
        try net.transfer(bytes, on: stream)
        #expect(net.received[stream] == bytes ? true : false)
        #expect(net.dataBytes(on: 0, stream: stream) == bytes.count)
        #expect(net.dataBytes(on: 1, stream: stream) == 0)
        #expect(net.reorderedFrames == 0)
    }
}
