@testable import BYSTProto
import NIOCore
import Testing

@Suite struct PacketQueueTests {
    private func packet(_ fill: UInt8, _ size: Int) -> [UInt8] { [UInt8](repeating: fill, count: size) }

    /// Decodes the frames a record payload holds.
    private func frames(in buffer: ByteBuffer) throws -> [Frame] {
        var payload = buffer
        var frames: [Frame] = []
        while let frame = try Frame.decode(from: &payload) { frames.append(frame) }
        return frames
    }

    @Test func framesLeaveInOrderAndOnlyWholeFramesFitARecord() throws {
        var queue = PacketQueue()
        let header = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 40, gsoSize: 1448,
                                     checksumStart: 20, checksumOffset: 16)
        let packets = [packet(1, 100), packet(2, 200), packet(3, 300)]
        packets[0].withUnsafeBytes { queue.append($0, offloadHeader: nil) }
        packets[1].withUnsafeBytes { queue.append($0, offloadHeader: header) }
        packets[2].withUnsafeBytes { queue.append($0, offloadHeader: nil) }
        #expect(queue.count == 3)
        #expect(queue.bytes == 3 * Frame.packetHeaderSize + 600 + Frame.offloadHeaderSize)

        // Room for the first two frames but not the third: exactly two move.
        var out = ByteBuffer()
        let room = 2 * Frame.packetHeaderSize + 300 + Frame.offloadHeaderSize + 299
        let first = queue.move(into: &out, limit: room, maxFrame: 16_384)
        #expect(first.moved == 2 && first.dropped == 0)
        var offloaded = ByteBuffer()
        header.write(into: &offloaded)
        offloaded.writeBytes(packets[1])
        #expect(try frames(in: out) == [.packet(ByteBuffer(bytes: packets[0])), .offloadPacket(offloaded)])

        var rest = ByteBuffer()
        let second = queue.move(into: &rest, limit: 16_384, maxFrame: 16_384)
        #expect(second.moved == 1 && queue.isEmpty && queue.bytes == 0)
        #expect(try frames(in: rest) == [.packet(ByteBuffer(bytes: packets[2]))])
    }

    @Test func aFrameLargerThanAnyRecordIsDroppedAndTheRestStillMoves() throws {
        var queue = PacketQueue()
        for (fill, size) in [(UInt8(1), 50), (2, 5000), (3, 60)] {
            packet(fill, size).withUnsafeBytes { queue.append($0, offloadHeader: nil) }
        }
        var out = ByteBuffer()
        let result = queue.move(into: &out, limit: 4096, maxFrame: 4096)
        #expect(result.moved == 2 && result.dropped == 1 && queue.isEmpty)
        #expect(try frames(in: out) == [.packet(ByteBuffer(bytes: packet(1, 50))), .packet(ByteBuffer(bytes: packet(3, 60)))])
    }

    /// A queue that never quite drains keeps its storage small: it compacts instead of growing.
    @Test func aQueueThatNeverDrainsKeepsItsStorageSmall() throws {
        var queue = PacketQueue()
        packet(0, 1000).withUnsafeBytes { queue.append($0, offloadHeader: nil) }
        var received: [UInt8] = []
        for round in 1...10_000 {
            packet(UInt8(truncatingIfNeeded: round), 1000).withUnsafeBytes { queue.append($0, offloadHeader: nil) }
            var out = ByteBuffer()
            // One frame per record: one packet is always left behind.
            _ = queue.move(into: &out, limit: Frame.packetHeaderSize + 1000, maxFrame: 4096)
            for case .packet(let bytes) in try frames(in: out) {
                received.append(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) ?? 0xFF)
            }
        }
        #expect(queue.count == 1)
        #expect(received == (0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        // 10 MB went through; without compaction the storage would have grown to hold it all.
        #expect(queue.storageCapacity <= 16 * 1024)
    }
}
