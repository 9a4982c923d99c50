import BYSTProto
import NIOCore
import Synchronization

/// Packets crossing between the data plane and the event loop, back to back in one buffer:
/// the plane's packets for peers whose links the loop holds, and the loop's packets from
/// such peers for the TUN. Each entry: peer index (Int32), flow hash (UInt64; a sequenced
/// frame's number on the way to the TUN), flags (1: the bytes start with a virtio-net header,
/// an `offloadPacket` frame; 2: sequenced), the length (UInt32), the bytes. One buffer per batch and one hop per batch: nothing allocated per packet.
struct PacketBatch: Sendable {
    fileprivate(set) var buffer = ByteBuffer()
    private(set) var count = 0
    /// A batch is handed over once it holds this many bytes (or at the end of a round).
    static let fullBytes = 256 * 1024

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { buffer.readableBytes >= Self.fullBytes }
    /// `other`'s packets fit in this batch without making it bigger than a full one.
    func hasRoom(for other: PacketBatch) -> Bool { buffer.readableBytes + other.buffer.readableBytes <= Self.fullBytes }

    /// `other`'s packets after these (copied: `other` stays as it is).
    mutating func append(contentsOf other: PacketBatch) {
        buffer.writeImmutableBuffer(other.buffer)
        count += other.count
    }

    /// A packet from the TUN for `peer` (with the virtio-net header it goes with, if whole).
    mutating func append(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?, peer: Int, flowHash: UInt64) {
        appendHead(peer: peer, flowHash: flowHash, offloaded: offloadHeader != nil,
                   length: packet.count + (offloadHeader == nil ? 0 : VirtioNetHeader.size))
        offloadHeader?.write(into: &buffer)
        buffer.writeBytes(packet)
    }

    /// A frame's bytes from `peer` for the TUN, as received (`offloaded`: header first);
    /// `sequence`: a sequenced frame's number (in the flow hash's place), to be reordered.
    mutating func append(frame: UnsafeRawBufferPointer, offloaded: Bool, sequence: UInt64? = nil, peer: Int) {
        appendHead(peer: peer, flowHash: sequence ?? 0, offloaded: offloaded, sequenced: sequence != nil, length: frame.count)
        buffer.writeBytes(frame)
    }

    private mutating func appendHead(peer: Int, flowHash: UInt64, offloaded: Bool, sequenced: Bool = false, length: Int) {
        // The first packet makes room for a typical batch: no regrowing from a few bytes up.
        if buffer.capacity == 0 { buffer.reserveCapacity(64 * 1024) }
        buffer.writeInteger(Int32(truncatingIfNeeded: peer))
        buffer.writeInteger(flowHash)
        buffer.writeInteger(UInt8(offloaded ? 1 : 0) | UInt8(sequenced ? 2 : 0))
        buffer.writeInteger(UInt32(truncatingIfNeeded: length))
        count += 1
    }

    /// Calls `body` with each entry, in order (`offloaded`: the bytes are an `offloadPacket`
    /// frame's, virtio-net header first; `sequenced`: `flowHash` is the frame's sequence number).
    func forEach(_ body: (_ peer: Int, _ flowHash: UInt64, _ offloaded: Bool, _ sequenced: Bool, UnsafeRawBufferPointer) -> Void) {
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset + 17 <= bytes.count {
                let peer = Int(Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                let hash = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self))
                let offloaded = bytes[offset + 12] & 1 != 0, sequenced = bytes[offset + 12] & 2 != 0
                let length = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 13, as: UInt32.self)))
                let start = offset + 17
                guard start + length <= bytes.count else { return }
                body(peer, hash, offloaded, sequenced, UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
                offset = start + length
            }
        }
    }

    /// Empties the batch, keeping its storage if nobody else holds it.
    mutating func removeAll() {
        buffer.clear()
        count = 0
    }

    /// Hands the contents over (the buffer now belongs to the receiver) and starts again on a
    /// buffer `spares` got back from an earlier batch's receiver, if it has one.
    mutating func take(refillingFrom spares: PacketBatchSpares) -> PacketBatch {
        let taken = self
        self = spares.emptyBatch()
        return taken
    }
}

/// The buffers of batches their receiver is done with, for the senders' next batches: a
/// batch crossing between threads allocates nothing in the steady state.
final class PacketBatchSpares: Sendable {
    private let buffers: Mutex<[ByteBuffer]>
    /// Buffers kept (each up to a full batch): enough for the batches in flight at a time.
    static let kept = 8

    init() {
        var buffers: [ByteBuffer] = []
        buffers.reserveCapacity(Self.kept)
        self.buffers = Mutex(buffers)
    }

    /// By the receiver, when done with `batch`: its buffer is kept if there is room (and it
    /// has any: a batch sent empty, to order something after earlier ones, may have none).
    func giveBack(_ batch: PacketBatch) {
        guard batch.buffer.capacity > 0 else { return }
        buffers.withLock { if $0.count < Self.kept { $0.append(batch.buffer) } }
    }

    /// By a sender: an empty batch, on a kept buffer if there is one. Emptied here, not when
    /// given back: by now the receiver has let go of it, so `clear` copies nothing.
    func emptyBatch() -> PacketBatch {
        var batch = PacketBatch()
        guard var buffer = buffers.withLock({ $0.popLast() }) else { return batch }
        buffer.clear()
        batch.buffer = buffer
        return batch
    }
}
