import NIOCore
import Testing
@testable import BYSTProto

/// `recycleEvents`: the driver hands back the event array of one record, and the next
/// record's events are collected in its storage (no array allocated per record).
@Suite struct SessionEventRecyclingTests {
    /// Sends one packet from `a` to `b` on `link`; returns `b`'s events for that record.
    private func deliverPacket(_ bytes: [UInt8], in pair: inout SessionPair, on link: LinkID) throws -> [SessionEvent] {
        let queued = bytes.withUnsafeBytes { pair.a.sendPacket($0, offloadHeader: nil, flowHash: 0) }
        #expect(queued)
        var record = ByteBuffer()
        var packetFrames = 0
        let written = pair.a.writePayload(for: link, maxBytes: pair.maxRecord, into: &record, packetFrames: &packetFrames)
        #expect(written > 0 && packetFrames == 1)
        return try pair.b.receive(record, from: link, now: pair.now)
    }

    private func packets(in events: [SessionEvent]) -> [[UInt8]] {
        events.compactMap { if case .packet(let bytes) = $0 { Array(bytes.readableBytesView) } else { nil } }
    }

    private func storage(of events: [SessionEvent]) -> UInt? {
        events.withUnsafeBufferPointer { $0.baseAddress.map { UInt(bitPattern: $0) } }
    }

    @Test func aRecycledArrayCollectsTheNextRecordsEvents() throws {
        var pair = SessionPair(links: 1)
        let link = LinkID(0)
        let first = try deliverPacket([0x45, 1, 2, 3], in: &pair, on: link)
        // Read outside `#expect`, which may keep a copy of what it evaluates (the array
        // must be ours alone to be recycled in place).
        let firstPackets = packets(in: first)
        let firstStorage = storage(of: first)
        pair.b.recycleEvents(consume first)
        #expect(firstPackets == [[0x45, 1, 2, 3]])
        #expect(firstStorage != nil)

        let second = try deliverPacket([0x45, 4, 5, 6, 7], in: &pair, on: link)
        #expect(packets(in: second) == [[0x45, 4, 5, 6, 7]], "the recycled storage holds only the new record's events")
        #expect(storage(of: second) == firstStorage)

        // Not handed back: the next record's events get storage of their own.
        let third = try deliverPacket([0x45, 8], in: &pair, on: link)
        #expect(packets(in: third) == [[0x45, 8]])
        #expect(storage(of: third) != storage(of: second))
        #expect(packets(in: second) == [[0x45, 4, 5, 6, 7]], "events already taken are never overwritten")
    }
}
