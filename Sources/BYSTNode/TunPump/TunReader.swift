import BYSTProto
import Foundation
import NIOCore
import Synchronization
import Tun

/// Packets read from a TUN in one go, back to back in one buffer: each is a 32-bit length,
/// then what read(2) returned (the virtio-net header and the packet, with offloads). One
/// buffer per batch, reused once the event loop is done with it: no allocation per packet.
struct TunBatch: Sendable {
    private(set) var buffer = ByteBuffer()
    private(set) var count = 0

    /// Room for one read: a whole super-packet (up to 64 KiB) after its header.
    static let readSize = VirtioNetHeader.size + 65536
    /// A batch ends after this many packets or bytes (a few super-packets).
    static let maxPackets = 64
    static let maxBytes = 256 * 1024

    /// Reads what is waiting (up to the limits); the batch's previous contents are dropped.
    mutating func read(from device: TunDevice) {
        buffer.clear()
        count = 0
        while count < Self.maxPackets, buffer.readableBytes < Self.maxBytes {
            buffer.reserveCapacity(minimumWritableBytes: 4 + Self.readSize)
            let lengthIndex = buffer.writerIndex
            buffer.moveWriterIndex(forwardBy: 4)
            let length = buffer.withUnsafeMutableWritableBytes { space in (try? device.read(into: space)) ?? nil }
            guard let length, length > 0 else {
                buffer.moveWriterIndex(to: lengthIndex)
                break
            }
            buffer.setInteger(UInt32(length), at: lengthIndex)
            buffer.moveWriterIndex(forwardBy: length)
            count += 1
        }
    }

    /// Calls `body` with each read, in order.
    func forEach(_ body: (UnsafeRawBufferPointer) -> Void) {
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset + 4 <= bytes.count {
                let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).bigEndian)
                body(UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + length)]))
                offset += 4 + length
            }
        }
    }
}

/// Reads packets on its own thread and hands them to the event loop in batches; at most
/// `maxPendingBatches` batches wait for the loop, beyond that they are dropped (counted).
/// The reads overlap with the loop's crypto and socket writes: reading the TUN on the event
/// loop instead halved throughput here, offloads or not (docs/PERFORMANCE.md).
final class TunReader: Sendable {
    private let device: TunDevice
    private let stopped = Atomic<Bool>(false)
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<UInt64>(0)
    /// Held while reading a batch and counting it as pending: the event loop's own reads
    /// (`readIfIdle`) never overtake packets this thread has read.
    private let reading = Mutex(())
    static let maxPendingBatches = 64

    init(device: TunDevice) { self.device = device }

    var droppedBatches: UInt64 { dropped.load(ordering: .relaxed) }

    func start(deliver: @escaping @Sendable (TunBatch) -> Void) {
        let thread = Thread { [self] in run(deliver) }
        thread.name = "byst-tun-reader"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func batchDelivered() { pending.subtract(1, ordering: .relaxed) }

    private func run(_ deliver: @Sendable (TunBatch) -> Void) {
        var batch = TunBatch()
        while !stopped.load(ordering: .relaxed) {
            guard device.waitReadable(timeoutMilliseconds: 100) else { continue }
            let ready: Bool = reading.withLock { _ in
                batch.read(from: device)
                guard batch.count > 0 else { return false }
                if pending.load(ordering: .relaxed) >= Self.maxPendingBatches {
                    dropped.add(1, ordering: .relaxed)
                    return false
                }
                pending.add(1, ordering: .relaxed)
                return true
            }
            if ready { deliver(batch) }
        }
    }

    /// On the event loop: what is waiting now, if this thread has nothing in flight and is
    /// not reading (else nothing: it will deliver those packets in order).
    func readIfIdle(into batch: inout TunBatch) -> Bool {
        reading.withLockIfAvailable { _ in
            guard pending.load(ordering: .relaxed) == 0 else { return false }
            batch.read(from: device)
            return batch.count > 0
        } ?? false
    }
}
