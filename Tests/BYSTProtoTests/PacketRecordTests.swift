@testable import BYSTProto
import NIOCore
import Testing

/// The runtime's fast path for records of packets only: it must take exactly the payloads
/// that decode to packet frames and nothing else, and hand out the same bytes.
@Suite struct PacketRecordTests {
    private func encoded(_ frames: [Frame]) -> [UInt8] {
        var buffer = ByteBuffer()
        for frame in frames { frame.encode(into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    private func packets(in payload: [UInt8]) -> (count: Int?, seen: [([UInt8], Bool)]) {
        payload.withUnsafeBytes { bytes in
            let count = PacketRecord.packetCount(bytes)
            var seen: [([UInt8], Bool)] = []
            if count != nil { PacketRecord.forEachPacket(bytes) { seen.append((Array($0), $1)); _ = $2 } }
            return (count, seen)
        }
    }

    private let plain = ByteBuffer(bytes: [0x45, 0, 0, 20] + [UInt8](repeating: 7, count: 16))
    private let offloaded = ByteBuffer(bytes: [UInt8](repeating: 1, count: Frame.offloadHeaderSize) + [0x60] + [UInt8](repeating: 9, count: 47))

    @Test func packetFramesOnlyAreTakenWithTheirBytes() {
        let (count, seen) = packets(in: encoded([.packet(plain), .offloadPacket(offloaded), .packet(plain)]))
        #expect(count == 3)
        #expect(seen.map(\.0) == [Array(plain.readableBytesView), Array(offloaded.readableBytesView), Array(plain.readableBytesView)])
        #expect(seen.map(\.1) == [false, true, false])
    }

    @Test func anyOtherFrameLeavesTheRecordToTheSession() {
        #expect(packets(in: encoded([.packet(plain), .pong(1)])).count == nil)
        #expect(packets(in: encoded([.retire, .packet(plain)])).count == nil)
        #expect(packets(in: encoded([.ack(id: 0, received: 1, limit: 2), .offloadPacket(offloaded)])).count == nil)
        // The initiator's first record is empty: the session sees it.
        #expect(packets(in: []).count == nil)
    }

    @Test func truncatedOrTrailingBytesAreLeftToTheSessionToReject() {
        let whole = encoded([.packet(plain), .offloadPacket(offloaded)])
        let firstFrameEnd = Frame.packetHeaderSize + plain.readableBytes
        for cut in 1..<whole.count {
            // Cut right after the first frame, what is left is a whole record of one packet.
            #expect(packets(in: Array(whole.prefix(cut))).count == (cut == firstFrameEnd ? 1 : nil))
        }
        #expect(packets(in: whole + [Frame.Kind.packet.rawValue]).count == nil)
        #expect(packets(in: whole + [0xFF, 0, 0]).count == nil)
        // An offloaded frame's length counts only the packet: its header must be there too.
        #expect(packets(in: [Frame.Kind.offloadPacket.rawValue, 0, 2, 0x45, 0]).count == nil)
    }
}
