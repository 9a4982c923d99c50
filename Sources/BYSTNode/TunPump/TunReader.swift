import BYSTProto
import Dispatch
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
    /// `stopAfterSmall`: a first read of at most that many bytes ends the batch.
    mutating func read(from device: TunDevice, stopAfterSmall: Int? = nil) {
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
            if count == 1, let small = stopAfterSmall, length <= small { break }
        }
    }

    /// The bytes read, without the length prefixes.
    var packetBytes: Int { buffer.readableBytes - 4 * count }

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

/// Reads one TUN queue, on one of two sides (`TunReadPolicy` says when each):
///
/// - **on the event loop** (`onLoop`), while traffic is light: a NIO pipe channel on a
///   duplicate of the descriptor wakes the loop, `TunLoopReadHandler` reads and routes;
/// - **on its own thread**, under load: batches go to the loop, overlapping the loop's
///   crypto (with backpressure: `waitForLoop`; past `maxPendingBatches` they are dropped
///   and counted).
///
/// Only one side reads at a time, and each hand-over is ordered behind what the other side
/// read, so a flow's packets stay in order: the thread hands back by a task queued after its
/// last batch; the loop hands over by stopping its reads before it wakes the thread.
final class TunReader: Sendable {
    let device: TunDevice
    private let stopped = Atomic<Bool>(false)
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<UInt64>(0)
    /// Who reads now; the thread sleeps on `wake` while the loop does.
    private let onLoop = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    /// The loop's channel is up: until then (or if it failed) the thread keeps reading.
    private let loopCanRead = Atomic<Bool>(false)
    private let handOvers = Atomic<UInt64>(0)
    /// Held while reading a batch and counting it as pending: the event loop's own reads
    /// (`readIfIdle`) never overtake packets this thread has read.
    private let reading = Mutex(())
    static let maxPendingBatches = 64

    init(device: TunDevice) { self.device = device }

    var droppedBatches: UInt64 { dropped.load(ordering: .relaxed) }
    /// The event loop reads this queue now (light traffic).
    var readsOnLoop: Bool { onLoop.load(ordering: .relaxed) }
    /// Times reading moved between the thread and the loop, either way.
    var readerHandOvers: UInt64 { handOvers.load(ordering: .relaxed) }

    /// `deliver` queues a batch on the loop; `handBack` queues, behind those, the loop's
    /// taking over of reading (`loopTookOver` there).
    func start(deliver: @escaping @Sendable (TunBatch) -> Void, handBack: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in run(deliver: deliver, handBack: handBack) }
        thread.name = "byst-tun-reader"
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        wake.signal()
    }

    func batchDelivered() { pending.subtract(1, ordering: .relaxed) }

    /// The loop's channel is ready: the thread may hand reading to it from now on.
    func loopReadingAvailable(_ available: Bool) { loopCanRead.store(available, ordering: .relaxed) }

    /// On the loop, which has stopped reading: the thread takes over.
    func handToThread() {
        onLoop.store(false, ordering: .relaxed)
        handOvers.add(1, ordering: .relaxed)
        wake.signal()
    }

    private func run(deliver: @Sendable (TunBatch) -> Void, handBack: @Sendable () -> Void) {
        var batch = TunBatch()
        var policy = TunReadPolicy()
        func giveBack() {
            guard loopCanRead.load(ordering: .relaxed) else { return }
            onLoop.store(true, ordering: .relaxed)
            handOvers.add(1, ordering: .relaxed)
            handBack()
        }
        while !stopped.load(ordering: .relaxed) {
            if onLoop.load(ordering: .relaxed) {
                // Woken by `handToThread` or `stop`: no polling while the loop reads.
                wake.wait()
                continue
            }
            // Idling hands reading to the loop, once it can read (until then: the old 100 ms).
            let idle = loopCanRead.load(ordering: .relaxed) ? TunReadPolicy.threadIdleMilliseconds : 100
            guard device.waitReadable(timeoutMilliseconds: idle) else {
                policy.threadWasIdle()
                giveBack()
                continue
            }
            waitForLoop()
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
            guard ready else { continue }
            deliver(batch)
            if policy.threadShouldHandBack(afterBatchOf: batch.count, bytes: batch.packetBytes) { giveBack() }
        }
    }

    /// Backpressure: while the loop has `backpressureBatches` batches to work through, the
    /// TUN's own queue holds further packets (the next batch is then fuller) instead of this
    /// thread reading them only to drop them. A loop that does not catch up within
    /// `backpressureLimit` is stalled: reading goes on, and past `maxPendingBatches` drops.
    static let backpressureBatches = maxPendingBatches / 4
    static let backpressureLimit: Duration = .milliseconds(100)

    private func waitForLoop() {
        guard pending.load(ordering: .relaxed) >= Self.backpressureBatches else { return }
        let clock = ContinuousClock()
        let giveUp = clock.now + Self.backpressureLimit
        while pending.load(ordering: .relaxed) >= Self.backpressureBatches, !stopped.load(ordering: .relaxed), clock.now < giveUp {
            usleep(50)
        }
    }

    /// On the event loop: what is waiting now, if this thread has nothing in flight and is
    /// not reading (else nothing: it will deliver those packets in order). `stopAfterSmall`
    /// as in `TunBatch.read`: what is left waiting is read by whichever side reads.
    func readIfIdle(into batch: inout TunBatch, stopAfterSmall: Int? = nil) -> Bool {
        reading.withLockIfAvailable { _ in
            guard pending.load(ordering: .relaxed) == 0 else { return false }
            batch.read(from: device, stopAfterSmall: stopAfterSmall)
            return batch.count > 0
        } ?? false
    }
}
