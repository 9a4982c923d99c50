// The packet channel between the TUN interface and peers (DESIGN.md §4 "TUN and routing"):
//
//   reader thread per TUN queue: poll + read(2) ≤ 64 packets ─▶ one hop to the event loop
//   fromTun: parse ─▶ destination in a peer's allowed_ips (longest prefix) ─▶ MSS clamp
//            ─▶ that peer's session ─▶ queue on the link its flow hashes to (bounded, drops)
//            GSO super-packet (offloads): whole as one `offloadPacket` frame if the peer's TUN
//            takes it, else cut into wire-size packets here (GSOSegmenter)
//   fromPeer: parse ─▶ source inside the sending peer's allowed_ips? else drop (spoofed)
//            ─▶ MSS clamp ─▶ write(2), one packet per call (after a virtio-net header with offloads)
//            ─▶ then, in the same loop cycle, read what the kernel answered inside that write
//               (if the reader thread has nothing in flight)
import BYSTProto
import Foundation
import Glibc
import Logging
import NIOCore
import Synchronization
import Tun

final class TunPump {
    let device: TunDevice
    let mtu: Int
    unowned let node: Node
    private var routes = AllowedIPs<Int>()
    /// One reader per queue (`[tun] queues`); the first queue's device also takes our writes.
    private let readers: [TunReader]
    private let extraQueues: [TunDevice]

    struct Counters: Codable, Sendable {
        var packets_from_tun: UInt64 = 0
        var packets_to_tun: UInt64 = 0
        var dropped_no_route: UInt64 = 0
        var dropped_no_session: UInt64 = 0
        var dropped_spoofed_source: UInt64 = 0
        var dropped_malformed: UInt64 = 0
        var dropped_tun_write: UInt64 = 0
        /// GSO super-packets from the TUN sent whole (`offloadPacket` frames), and those cut
        /// into packets here because the peer's TUN cannot take them.
        var super_packets_sent_whole: UInt64 = 0
        var super_packets_segmented: UInt64 = 0
        /// `offloadPacket` frames from peers written to the TUN whole.
        var super_packets_received: UInt64 = 0
    }
    private(set) var counters = Counters()

    init(device: TunDevice, extraQueues: [TunDevice] = [], mtu: Int, node: Node) {
        self.device = device
        self.extraQueues = extraQueues
        self.mtu = mtu
        self.node = node
        readers = ([device] + extraQueues).map { TunReader(device: $0) }
        rebuildRoutes()
    }

    /// The routing table from the node's peers (again after a reload changed them).
    func rebuildRoutes() {
        routes = AllowedIPs<Int>()
        for (index, peer) in node.peers.enumerated() {
            for prefix in peer.config.allowedIPs { routes.insert(prefix, peer: index) }
        }
    }

    func start() {
        let pump = NIOLoopBound(self, eventLoop: node.eventLoop)
        let loop = node.eventLoop
        // Each queue's reader delivers its batches in order; the kernel keeps a flow on one
        // queue, so flows stay in order.
        for (index, reader) in readers.enumerated() {
            reader.start { batch in
                loop.execute { pump.value.fromTun(batch, reader: index) }
            }
        }
    }

    func stop() {
        for reader in readers { reader.stop() }
    }

    func closeDevices() {
        device.close()
        for queue in extraQueues { queue.close() }
    }

    var droppedByReader: UInt64 { readers.reduce(0) { $0 + $1.droppedBatches } }

    /// `reader`: the index of the reader thread (queue) that read the batch.
    func fromTun(_ batch: [TunRead], reader: Int) {
        readers[reader].batchDelivered()
        route(batch)
    }

    /// A packet we write to the TUN is often answered inside that write (a local socket's
    /// ACK, an ICMP echo reply). Reading it here, in the same event-loop cycle, saves waking
    /// the reader thread and then this loop for it — two wake-ups on the reply's path. Only
    /// while the reader has nothing in flight to us, so no flow is reordered.
    private var readAfterWriteScheduled = false
    private var loopReadBuffer: [UInt8] = []

    private func scheduleReadAfterWrite() {
        guard !readAfterWriteScheduled else { return }
        readAfterWriteScheduled = true
        node.eventLoop.assumeIsolated().execute { [self] in
            readAfterWriteScheduled = false
            if loopReadBuffer.isEmpty { loopReadBuffer = [UInt8](repeating: 0, count: TunReader.bufferSize) }
            for reader in readers {
                let batch = reader.readIfIdle(into: &loopReadBuffer)
                if !batch.isEmpty { route(batch) }
            }
        }
    }

    private func route(_ batch: [TunRead]) {
        var touched: [ObjectIdentifier: SessionRuntime] = [:]
        for read in batch {
            counters.packets_from_tun += 1
            var bytes = read.packet
            guard let packet = IPPacket(bytes) else {
                drop(.malformed)
                continue
            }
            guard let peerIndex = routes.lookup(packet.destination) else {
                drop(.noRoute)
                continue
            }
            guard let session = node.peers[peerIndex].sessionForNewStream(), session.machine.hasLinks else {
                drop(.noSession)
                continue
            }
            let hash = packet.flowHash(bytes)
            touched[ObjectIdentifier(session)] = session
            let header = read.header
            if header.isGSO {
                // The peer's TUN takes it whole: one frame instead of up to 45 packets.
                if session.peerTakesOffloadPackets,
                   bytes.count + Frame.packetHeaderSize + Frame.offloadHeaderSize <= session.peerMaxPayload {
                    var framed = ByteBuffer()
                    framed.reserveCapacity(VirtioNetHeader.size + bytes.count)
                    header.write(into: &framed)
                    framed.writeBytes(bytes)
                    queue(framed, offload: true, hash: hash, on: session)
                    counters.super_packets_sent_whole += 1
                    continue
                }
                counters.super_packets_segmented += 1
                do throws(GSOSegmenter.Failure) {
                    for segment in try GSOSegmenter.segments(of: bytes, header: header) {
                        queue(ByteBuffer(bytes: segment), offload: false, hash: hash, on: session)
                    }
                } catch {
                    drop(.malformed)
                }
                continue
            }
            if header.needsChecksum {
                do throws(GSOSegmenter.Failure) { try GSOSegmenter.completeChecksum(&bytes, header: header) } catch {
                    drop(.malformed)
                    continue
                }
            }
            MSSClamp.clamp(&bytes, mtu: mtu)
            queue(ByteBuffer(bytes: bytes), offload: false, hash: hash, on: session)
        }
        for session in touched.values { session.pumpNow() }
    }

    private func queue(_ bytes: ByteBuffer, offload: Bool, hash: UInt64, on session: SessionRuntime) {
        if session.machine.sendPacket(bytes, flowHash: hash, offload: offload) {
            session.metrics.packetsSent.increment()
        } else {
            node.metrics.packetDropped(.queueFull)
        }
    }

    private func drop(_ reason: PacketDropReason) {
        switch reason {
        case .malformed: counters.dropped_malformed += 1
        case .noRoute: counters.dropped_no_route += 1
        case .noSession: counters.dropped_no_session += 1
        case .spoofedSource: counters.dropped_spoofed_source += 1
        case .tunWrite: counters.dropped_tun_write += 1
        case .queueFull: break
        }
        node.metrics.packetDropped(reason)
    }

    func fromPeer(_ packet: ByteBuffer, peer: PeerRuntime) {
        var bytes = Array(packet.readableBytesView)
        guard let parsed = IPPacket(bytes) else { return drop(.malformed) }
        guard peer.config.allowedIPs.contains(where: { $0.contains(parsed.source) }) else { return drop(.spoofedSource) }
        MSSClamp.clamp(&bytes, mtu: mtu)
        writePlain(bytes)
        scheduleReadAfterWrite()
    }

    /// A packet with complete checksums, after a plain virtio-net header when the TUN takes
    /// headers (the kernel checks the checksums itself).
    private func writePlain(_ packet: [UInt8]) {
        let written = device.vnetHeader
            ? Self.plainHeader.withUnsafeBytes { header in packet.withUnsafeBytes { device.write(header: header, packet: $0) } }
            : packet.withUnsafeBytes { device.write($0) }
        if written { counters.packets_to_tun += 1 } else { drop(.tunWrite) }
    }

    /// An `offloadPacket` frame: the kernel segments it, or — without offloads here — we do.
    func offloadedFromPeer(_ frame: ByteBuffer, peer: PeerRuntime) {
        guard let header = VirtioNetHeader(frame.readableBytesView.prefix(VirtioNetHeader.size)) else { return drop(.malformed) }
        let bytes = Array(frame.readableBytesView.dropFirst(VirtioNetHeader.size))
        guard let parsed = IPPacket(bytes) else { return drop(.malformed) }
        guard peer.config.allowedIPs.contains(where: { $0.contains(parsed.source) }) else { return drop(.spoofedSource) }
        if device.vnetHeader, node.tunOffloads != nil {
            // The frame is already header ‖ packet, as the TUN takes it.
            let written = frame.withUnsafeReadableBytes { device.write($0) }
            if written { counters.super_packets_received += 1 } else { drop(.tunWrite) }
            scheduleReadAfterWrite()
            return
        }
        let segments: [[UInt8]]
        do throws(GSOSegmenter.Failure) { segments = try GSOSegmenter.segments(of: bytes, header: header) } catch {
            return drop(.malformed)
        }
        for segment in segments { writePlain(segment) }
        scheduleReadAfterWrite()
    }

    private static let plainHeader = VirtioNetHeader.plain.bytes
}

/// One read from the TUN: the packet and, with offloads, what its virtio-net header said.
struct TunRead: Sendable {
    var header: VirtioNetHeader
    var packet: [UInt8]
}

/// Reads packets on its own thread and hands them to the event loop in batches; at most
/// `maxPendingBatches` batches wait for the loop, beyond that they are dropped (counted).
final class TunReader: Sendable {
    private let device: TunDevice
    private let stopped = Atomic<Bool>(false)
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<UInt64>(0)
    /// Held while reading a batch and counting it as pending: the event loop's own reads
    /// (`readIfIdle`) never overtake packets this thread has read.
    private let reading = Mutex(())
    static let batchSize = 64
    static let maxPendingBatches = 64
    /// A whole super-packet (up to 64 KiB) after its header.
    static let bufferSize = VirtioNetHeader.size + 65536

    init(device: TunDevice) { self.device = device }

    var droppedBatches: UInt64 { dropped.load(ordering: .relaxed) }

    func start(deliver: @escaping @Sendable ([TunRead]) -> Void) {
        let thread = Thread { [self] in run(deliver) }
        thread.name = "byst-tun-reader"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func batchDelivered() { pending.subtract(1, ordering: .relaxed) }

    private func run(_ deliver: @Sendable ([TunRead]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
        while !stopped.load(ordering: .relaxed) {
            guard device.waitReadable(timeoutMilliseconds: 100) else { continue }
            let batch: [TunRead]? = reading.withLock { _ in
                let batch = readBatch(into: &buffer, limit: Self.batchSize)
                guard !batch.isEmpty else { return nil }
                if pending.load(ordering: .relaxed) >= Self.maxPendingBatches {
                    dropped.add(1, ordering: .relaxed)
                    return nil
                }
                pending.add(1, ordering: .relaxed)
                return batch
            }
            if let batch { deliver(batch) }
        }
    }

    /// On the event loop: what is waiting now, if this thread has nothing in flight and is
    /// not reading (else nothing: it will deliver those packets in order).
    func readIfIdle(into buffer: inout [UInt8]) -> [TunRead] {
        reading.withLockIfAvailable { _ in
            pending.load(ordering: .relaxed) == 0 ? readBatch(into: &buffer, limit: Self.batchSize) : []
        } ?? []
    }

    private func readBatch(into buffer: inout [UInt8], limit: Int) -> [TunRead] {
        let headerSize = device.vnetHeader ? VirtioNetHeader.size : 0
        var batch: [TunRead] = []
        while batch.count < limit {
            let length = (try? buffer.withUnsafeMutableBytes { try device.read(into: $0) }) ?? nil
            guard let length, length > headerSize else { break }
            let header = headerSize == 0 ? VirtioNetHeader.plain : VirtioNetHeader(buffer) ?? .plain
            batch.append(TunRead(header: header, packet: Array(buffer[headerSize..<length])))
        }
        return batch
    }
}
