import NIOCore
import Testing
@testable import BYSTProto

/// Link recycling (PROTOCOL.md §5.6): a replacement link comes up, the old one retires, and
/// neither stream bytes nor packets are lost — unlike a cut, nothing in flight is dropped.
@Suite struct LinkRetireTests {
    @Test func recyclingLinksLosesNoStreamBytesAndNoPackets() throws {
        var pair = SessionPair(links: 2)
        let streamCount = 4
        let size = 600_000
        var transfer = try pair.openTransfer(streams: streamCount) { index in
            (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
        }
        var packetsQueued = 0
        var packetsArrived = 0
        var retiring: Set<LinkID> = []
        var recycled = 0
        for round in 0..<20_000 {
            pair.feed(&transfer)
            // A few packets of different flows each round, in both directions.
            for flow in 0..<3 {
                if pair.a.sendPacket(ByteBuffer(bytes: [0x45, UInt8(flow), UInt8(round & 0xFF)]), flowHash: UInt64(flow)) {
                    packetsQueued += 1
                }
            }
            try pair.step(records: 2, deliverFraction: 0.5)
            for event in pair.collect(&transfer) {
                switch event {
                case .packet: packetsArrived += 1
                case .linkDead(let id): Issue.record("link \(id) declared dead while retiring")
                default: break
                }
            }
            // Every 40 rounds the initiator brings up a replacement and retires its oldest link.
            if round % 40 == 39, let oldest = pair.aToB.keys.filter({ !retiring.contains($0) }).min() {
                pair.addLink()
                pair.a.retireLink(oldest, now: pair.now)
                retiring.insert(oldest)
            }
            // Once both retire frames have crossed, nothing is in flight: close it.
            for id in retiring.sorted() where pair.a.isRetired(id) && pair.b.isRetired(id) {
                #expect(pair.aToB[id]?.isEmpty == true && pair.bToA[id]?.isEmpty == true, "bytes in flight on retired link \(id)")
                pair.cut(id)
                retiring.remove(id)
                recycled += 1
            }
            if transfer.finished.count == streamCount && pair.a.streamCount == 0 && pair.b.streamCount == 0 && round > 400 { break }
        }
        // Drain what is still queued.
        for _ in 0..<50 { try pair.step() }
        packetsArrived += pair.eventsAtB.filter { if case .packet = $0 { true } else { false } }.count
        print("link retire simulation: \(recycled) links recycled, \(packetsArrived)/\(packetsQueued) packets")
        #expect(recycled >= 8)
        #expect(transfer.finished.count == streamCount)
        for (id, bytes) in transfer.expected { #expect(transfer.received[id] == bytes, "stream \(id) differs") }
        #expect(packetsArrived == packetsQueued)
        #expect(pair.a.packetsDropped == 0 && pair.b.packetsDropped == 0)
    }

    @Test func retireFrameRoundTrips() throws {
        var buffer = ByteBuffer()
        Frame.retire.encode(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0x0B])
        #expect(try Frame.decode(from: &buffer) == .retire)
    }
}
