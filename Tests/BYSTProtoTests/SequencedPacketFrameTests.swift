@testable import BYSTProto
import NIOCore
import Testing

/// The sequenced packet frames of packet striping (PROTOCOL.md §5.2, §5.4): layout, decoding,
/// the fast path's reading of them, and refusal of truncated or malformed bytes.
@Suite struct SequencedPacketFrameTests {
    private let packet: [UInt8] = [0x45, 0, 0, 20] + [UInt8](repeating: 7, count: 16)
    private var offloaded: [UInt8] { [UInt8](repeating: 1, count: Frame.offloadHeaderSize) + packet }

    private func encoded(_ frames: [Frame]) -> [UInt8] {
        var buffer = ByteBuffer()
        for frame in frames { frame.encode(into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    private func decoded(_ bytes: [UInt8]) throws(FrameError) -> [Frame] {
        var buffer = ByteBuffer(bytes: bytes)
        var frames: [Frame] = []
        while let frame = try Frame.decode(from: &buffer) { frames.append(frame) }
        return frames
    }

    @Test func layoutIsKindSequenceLengthPacket() {
        let bytes = encoded([.sequencedPacket(seq: 0x0102_0304_0506_0708, ByteBuffer(bytes: packet))])
        #expect(bytes.prefix(11) == [0x0E, 1, 2, 3, 4, 5, 6, 7, 8, 0, 20])
        #expect(Array(bytes.dropFirst(11)) == packet)
        #expect(bytes.count == Frame.sequencedPacketHeaderSize + packet.count)
        // The offloaded form: the length counts the packet only, the virtio-net header follows it.
        let off = encoded([.sequencedOffloadPacket(seq: 9, ByteBuffer(bytes: offloaded))])
        #expect(off.prefix(11) == [0x0F, 0, 0, 0, 0, 0, 0, 0, 9, 0, 20])
        #expect(Array(off.dropFirst(11)) == offloaded)
        #expect(Frame.sequencedOffloadPacket(seq: 9, ByteBuffer(bytes: offloaded)).encodedSize == off.count)
    }

    @Test func encodeThenDecodeIsTheIdentity() throws {
        let frames: [Frame] = [.sequencedPacket(seq: 1, ByteBuffer(bytes: packet)), .packet(ByteBuffer(bytes: packet)),
                               .sequencedOffloadPacket(seq: .max, ByteBuffer(bytes: offloaded))]
        #expect(try decoded(encoded(frames)) == frames)
    }

    @Test func truncatedFramesAreRefused() {
        for frame in [Frame.sequencedPacket(seq: 5, ByteBuffer(bytes: packet)), .sequencedOffloadPacket(seq: 5, ByteBuffer(bytes: offloaded))] {
            let whole = encoded([frame])
            guard case .sequencedPacket = frame else {
                for cut in 1..<whole.count { #expect(throws: FrameError.truncated(.sequencedOffloadPacket)) { try decoded(Array(whole.prefix(cut))) } }
                continue
            }
            for cut in 1..<whole.count { #expect(throws: FrameError.truncated(.sequencedPacket)) { try decoded(Array(whole.prefix(cut))) } }
        }
        // The next kind is unknown.
        #expect(throws: FrameError.unknownKind(0x11)) { try decoded([0x11, 0, 0]) }
    }

    @Test func theFastPathReadsSequenceNumbersAndBytes() {
        let bytes = encoded([.sequencedPacket(seq: 77, ByteBuffer(bytes: packet)), .packet(ByteBuffer(bytes: packet)),
                             .sequencedOffloadPacket(seq: 78, ByteBuffer(bytes: offloaded))])
        bytes.withUnsafeBytes { raw in
            #expect(PacketRecord.packetCount(raw) == 3)
            var seen: [([UInt8], Bool, UInt64?)] = []
            PacketRecord.forEachPacket(raw) { seen.append((Array($0), $1, $2)) }
            #expect(seen.map(\.0) == [packet, packet, offloaded])
            #expect(seen.map(\.1) == [false, false, true])
            #expect(seen.map(\.2) == [77, nil, 78])
        }
        // Truncated anywhere: left to the session, which refuses it.
        for cut in 1..<bytes.count {
            let count = Array(bytes.prefix(cut)).withUnsafeBytes { PacketRecord.packetCount($0) }
            // Cut right after the first or second frame, what is left is whole.
            let whole: [Int: Int] = [11 + packet.count: 1, 11 + packet.count + 3 + packet.count: 2]
            #expect(count == whole[cut])
        }
    }

    @Test func theLoopPathDeliversThemWithTheirNumbers() throws {
        var machine = SessionMachine(role: .responder, config: SessionConfig(), now: 0)
        machine.linkUp(LinkID(1), now: 0, sequencedPackets: true)
        let payload = ByteBuffer(bytes: encoded([.sequencedPacket(seq: 3, ByteBuffer(bytes: packet)), .pong(0)]))
        let events = try machine.receive(payload, from: LinkID(1), now: 1)
        let sequenced = events.compactMap { event -> UInt64? in
            if case .sequencedPacket(let seq, let bytes, let offloaded) = event, Array(bytes.readableBytesView) == packet, !offloaded {
                return seq
            }
            return nil
        }
        #expect(sequenced == [3])
    }

    /// On a link that did not negotiate `sequencedPackets`, they are unknown frame types: the
    /// fast path leaves the record to the session, which refuses it (the link closes).
    @Test func onALinkWithoutTheFeatureTheyAreRefused() {
        var machine = SessionMachine(role: .responder, config: SessionConfig(), now: 0)
        machine.linkUp(LinkID(1), now: 0)
        machine.linkUp(LinkID(2), now: 0, sequencedPackets: true)
        machine.linkDown(LinkID(2), now: 0)
        machine.linkUp(LinkID(2), now: 0)
        for link in [LinkID(1), LinkID(2)] {
            for frame in [Frame.sequencedPacket(seq: 1, ByteBuffer(bytes: packet)), .sequencedOffloadPacket(seq: 1, ByteBuffer(bytes: offloaded))] {
                let kind: UInt8 = if case .sequencedPacket = frame { 0x0E } else { 0x0F }
                #expect(throws: SessionError.frame(.unknownKind(kind))) {
                    _ = try machine.receive(ByteBuffer(bytes: encoded([frame])), from: link, now: 1)
                }
            }
        }
        let bytes = encoded([.sequencedPacket(seq: 77, ByteBuffer(bytes: packet))])
        bytes.withUnsafeBytes { raw in
            #expect(PacketRecord.packetCount(raw, sequenced: false) == nil)
            #expect(PacketRecord.packetCount(raw, sequenced: true) == 1)
            #expect(PacketRecord.isSequencedOnly(raw))
        }
        // Any plain packet or other frame among them: not sequenced only.
        for other in [Frame.packet(ByteBuffer(bytes: packet)), .ping(1)] {
            encoded([.sequencedPacket(seq: 1, ByteBuffer(bytes: packet)), other]).withUnsafeBytes { #expect(!PacketRecord.isSequencedOnly($0)) }
        }
        [UInt8]().withUnsafeBytes { #expect(!PacketRecord.isSequencedOnly($0)) }
        Array(bytes.dropLast()).withUnsafeBytes { #expect(!PacketRecord.isSequencedOnly($0)) }
    }
}
