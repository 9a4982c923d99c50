import BYSTProto
import NIOCore

/// Packets crossing between the data plane and the event loop, back to back in one buffer:
/// the plane's packets for peers whose links the loop holds, and the loop's packets from
/// such peers for the TUN. Each entry: peer index (Int32), flow hash (UInt64; a sequenced
/// frame's number on the way to the TUN), flags (1: the bytes start with a virtio-net header,
/// an `offloadPacket` frame; 2: sequenced), the length (UInt32), the bytes. One buffer per batch and one hop per batch: nothing allocated per packet.
struct PacketBatch: Sendable {
    private(set) var buffer = ByteBuffer()
    private(set) var count = 0
    /// A batch is handed over once it holds this many bytes (or at the end of a round).
    static let fullBytes = 256 * 1024

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { buffer.readableBytes >= Self.fullBytes }

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

    /// Hands the contents over and starts a new buffer (the old one now belongs to the receiver).
    mutating func take() -> PacketBatch {
        let taken = self
        self = PacketBatch()
        return taken
    }
}
