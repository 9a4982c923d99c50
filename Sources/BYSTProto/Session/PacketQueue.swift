import NIOCore

/// The packets waiting for one link, already encoded as `packet` / `offloadPacket` frames
/// (PROTOCOL.md §5.2, §5.4) back to back in one buffer. Queueing copies the packet in; the
/// storage is kept and reused once the queue drains, so the steady state allocates nothing
/// per packet, and a record takes all the packets that fit in one copy.
public struct PacketQueue {
    private var frames = ByteBuffer()
    private(set) var count = 0

    /// Bytes queued, frame headers included (what `packetQueueBytes` bounds).
    var bytes: Int { frames.readableBytes }
    var isEmpty: Bool { count == 0 }
    /// The bytes the queue's storage holds (for tests of its compaction).
    var storageCapacity: Int { frames.capacity }

    /// The frame size a packet of `packetBytes` bytes takes in the queue and on the wire.
    public static func frameSize(packetBytes: Int, offload: Bool, sequenced: Bool = false) -> Int {
        (sequenced ? Frame.sequencedPacketHeaderSize : Frame.packetHeaderSize) + packetBytes + (offload ? Frame.offloadHeaderSize : 0)
    }

    /// `append` if the queue stays within `limit` bytes with it; false (nothing queued) if not.
    mutating func append(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?, ifWithin limit: Int) -> Bool {
        guard bytes + Self.frameSize(packetBytes: packet.count, offload: offloadHeader != nil) <= limit else { return false }
        append(packet, offloadHeader: offloadHeader)
        return true
    }

    /// Appends `packet` as a `packet` frame, or after `offloadHeader` as an `offloadPacket`
    /// frame. The caller checked the size (at most `Frame.maxPacketSize`).
    mutating func append(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?) {
        if frames.readableBytes == 0 {
            // Drained: start again at the beginning of the storage we already have.
            frames.clear()
        }
        Self.writeFrame(packet, offloadHeader: offloadHeader, into: &frames)
        count += 1
    }

    /// Writes `packet` as a `packet` frame, or after `offloadHeader` as an `offloadPacket`
    /// frame (PROTOCOL.md §5.2, §5.4); with `sequence`, as their sequenced forms (packet
    /// striping). The caller checked the size.
    public static func writeFrame(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?, sequence: UInt64? = nil,
                                  into out: inout ByteBuffer) {
        let kind: Frame.Kind = switch (offloadHeader != nil, sequence != nil) {
        case (false, false): .packet
        case (true, false): .offloadPacket
        case (false, true): .sequencedPacket
        case (true, true): .sequencedOffloadPacket
        }
        out.writeInteger(kind.rawValue)
        if let sequence { out.writeInteger(sequence) }
        out.writeInteger(UInt16(truncatingIfNeeded: packet.count))
        offloadHeader?.write(into: &out)
        out.writeBytes(packet)
    }

    /// Moves whole frames, oldest first, into `out` while `out` stays within `limit` (a
    /// writer index). A frame larger than `maxFrame` can never be sent and is dropped.
    /// Returns the frames moved and dropped.
    mutating func move(into out: inout ByteBuffer, limit: Int, maxFrame: Int) -> (moved: Int, dropped: Int) {
        var moved = 0, dropped = 0
        while count > 0 {
            var run = 0, frameCount = 0
            var index = frames.readerIndex
            // The longest run of frames, from the front, that fits.
            while frameCount < count, let size = frameSize(at: index), size <= maxFrame,
                  out.writerIndex + run + size <= limit {
                run += size
                index += size
                frameCount += 1
            }
            if run > 0 {
                _ = frames.withUnsafeReadableBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0.prefix(run))) }
                frames.moveReaderIndex(forwardBy: run)
                count -= frameCount
                moved += frameCount
            }
            // Stopped at an oversized frame: drop it and go on; otherwise the record is full.
            guard count > 0, let size = frameSize(at: frames.readerIndex), size > maxFrame else { break }
            frames.moveReaderIndex(forwardBy: size)
            count -= 1
            dropped += 1
        }
        compact()
        return (moved, dropped)
    }

    private func frameSize(at index: Int) -> Int? {
        guard let kind = frames.getInteger(at: index, as: UInt8.self),
              let length = frames.getInteger(at: index + 1, as: UInt16.self) else { return nil }
        return Self.frameSize(packetBytes: Int(length), offload: kind == Frame.Kind.offloadPacket.rawValue)
    }

    /// Keeps the storage from growing while the queue never quite drains: once more than
    /// half of it lies before the reader index, the rest moves to the front (no allocation).
    private mutating func compact() {
        if frames.readableBytes == 0 {
            frames.clear()
        } else if frames.readerIndex > frames.capacity / 2 {
            frames.discardReadBytes()
        }
    }
}
