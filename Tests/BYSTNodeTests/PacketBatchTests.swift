import BYSTProto
import NIOCore
import Testing
@testable import BYSTNode

/// Batches of packets crossing between the data plane and the event loop: what goes in comes
/// out in order, batches join without losing or reordering packets, and used buffers come
/// back for the next batch instead of new ones.
@Suite struct PacketBatchTests {
    private static func packet(_ fill: UInt8, _ length: Int) -> [UInt8] { [UInt8](repeating: fill, count: length) }

    private static func entries(_ batch: PacketBatch) -> [(peer: Int, hash: UInt64, offloaded: Bool, sequenced: Bool, bytes: [UInt8])] {
        var entries: [(peer: Int, hash: UInt64, offloaded: Bool, sequenced: Bool, bytes: [UInt8])] = []
        batch.forEach { peer, hash, offloaded, sequenced, bytes in entries.append((peer, hash, offloaded, sequenced, Array(bytes))) }
        return entries
    }

    @Test func entriesComeOutAsTheyWentIn() {
        var batch = PacketBatch()
        Self.packet(1, 60).withUnsafeBytes { batch.append($0, offloadHeader: nil, peer: 3, flowHash: 77) }
        Self.packet(2, 1400).withUnsafeBytes { batch.append(frame: $0, offloaded: true, sequence: 9, peer: 5) }
        let entries = Self.entries(batch)
        #expect(batch.count == 2)
        #expect(entries.count == 2)
        #expect(entries[0].peer == 3 && entries[0].hash == 77 && !entries[0].offloaded && !entries[0].sequenced)
        #expect(entries[0].bytes == Self.packet(1, 60))
        #expect(entries[1].peer == 5 && entries[1].hash == 9 && entries[1].offloaded && entries[1].sequenced)
        #expect(entries[1].bytes == Self.packet(2, 1400))
    }

    @Test func aJoinedBatchKeepsBothInOrderAndTheOtherUnchanged() {
        var first = PacketBatch(), second = PacketBatch()
        Self.packet(1, 100).withUnsafeBytes { first.append($0, offloadHeader: nil, peer: 0, flowHash: 1) }
        Self.packet(2, 200).withUnsafeBytes { second.append($0, offloadHeader: nil, peer: 1, flowHash: 2) }
        Self.packet(3, 300).withUnsafeBytes { second.append($0, offloadHeader: nil, peer: 2, flowHash: 3) }
        #expect(first.hasRoom(for: second))
        first.append(contentsOf: second)
        #expect(first.count == 3)
        #expect(Self.entries(first).map(\.peer) == [0, 1, 2])
        #expect(Self.entries(first).map(\.bytes) == [Self.packet(1, 100), Self.packet(2, 200), Self.packet(3, 300)])
        #expect(second.count == 2 && Self.entries(second).map(\.peer) == [1, 2])
    }

    @Test func aFullBatchHasNoRoomForMore() {
        var full = PacketBatch(), one = PacketBatch()
        let big = Self.packet(7, 60_000)
        while !full.isFull { big.withUnsafeBytes { full.append($0, offloadHeader: nil, peer: 0, flowHash: 0) } }
        big.withUnsafeBytes { one.append($0, offloadHeader: nil, peer: 0, flowHash: 0) }
        #expect(!full.hasRoom(for: one))
        #expect(PacketBatch().hasRoom(for: one))
    }

    private static func storage(_ batch: PacketBatch) -> UnsafeRawPointer? {
        batch.buffer.withVeryUnsafeBytes { UnsafeRawPointer($0.baseAddress) }
    }

    @Test func aBufferGivenBackIsTheNextBatchsOwnStorageEmptied() {
        let spares = PacketBatchSpares()
        // The receiver's side, in its own scope: when it ends, nothing but `spares` holds the buffer.
        let given: UnsafeRawPointer? = {
            var sender = PacketBatch()
            Self.packet(1, 1000).withUnsafeBytes { sender.append($0, offloadHeader: nil, peer: 0, flowHash: 0) }
            let handed = sender.take(refillingFrom: spares)
            #expect(sender.isEmpty && sender.buffer.capacity == 0)   // nothing given back yet
            spares.giveBack(handed)
            return Self.storage(handed)
        }()
        let next = spares.emptyBatch()
        #expect(next.isEmpty && next.buffer.readableBytes == 0)
        // The same storage, not a copy of it: an unshared buffer is emptied in place.
        #expect(given != nil && Self.storage(next) == given)
        #expect(spares.emptyBatch().buffer.capacity == 0)   // taken: there was only one
    }

    @Test func joinedWritesToTheTunKeepOneLinksRecordsDoneAndNeverMixTwo() {
        let a = DataPlaneLinkShared(now: 0), b = DataPlaneLinkShared(now: 0)
        func joined(_ first: (DataPlaneLinkShared, Int)?, _ second: (DataPlaneLinkShared, Int)?) -> String {
            switch DataPlane.recordsDone(first, then: second) {
            case .none: "apart"
            case .some(.none): "none"
            case .some(.some(let (link, count))): "\(link === a ? "a" : "b") \(count)"
            }
        }
        #expect(joined(nil, nil) == "none")
        #expect(joined((a, 1), nil) == "a 1")
        #expect(joined(nil, (b, 2)) == "b 2")
        #expect(joined((a, 1), (a, 2)) == "a 3")
        #expect(joined((a, 1), (b, 1)) == "apart")
    }

    @Test func sparesKeepABoundedNumberAndNoEmptyBuffers() {
        let spares = PacketBatchSpares()
        spares.giveBack(PacketBatch())   // sent empty, to order something: no buffer to keep
        #expect(spares.emptyBatch().buffer.capacity == 0)
        for _ in 0..<(PacketBatchSpares.kept + 5) {
            var batch = PacketBatch()
            Self.packet(1, 10).withUnsafeBytes { batch.append($0, offloadHeader: nil, peer: 0, flowHash: 0) }
            spares.giveBack(batch)
        }
        var reused = 0
        for _ in 0..<(PacketBatchSpares.kept + 5) where spares.emptyBatch().buffer.capacity > 0 { reused += 1 }
        #expect(reused == PacketBatchSpares.kept)
    }
}
