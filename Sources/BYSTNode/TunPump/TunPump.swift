// The packet channel between the TUN interface and peers (docs/ARCHITECTURE.md §3.7, §4.2):
//
//   per TUN queue, light traffic: read on the event loop (TunLoopReadHandler, no hop)
//              bulk traffic: a reader thread, poll + read(2) ≤ 64 packets into one reused
//              buffer (TunBatch) ─▶ one hop to the event loop       (TunReader, TunReadPolicy)
//   fromTun: parse ─▶ destination in a peer's allowed_ips (longest prefix) ─▶ MSS clamp
//            ─▶ that peer's session ─▶ copied into the queue of the link its flow hashes to
//               (PacketQueue: bounded, drops; nothing allocated per packet)
//            GSO super-packet (offloads): whole as one `offloadPacket` frame if the peer's TUN
//            takes it, else cut into wire-size packets here (GSOSegmenter)
//   fromPeer: parse ─▶ source's longest-prefix owner is the sending peer? else drop (spoofed)
//            (records of packets only come here straight from the link: PacketRecord)
//            ─▶ MSS clamp ─▶ write(2), one packet per call (after a virtio-net header with offloads)
//            ─▶ then, in the same loop cycle, read what the kernel answered inside that write
//               (if the reader thread has nothing in flight; ReadAfterWritePolicy backs off
//               while writes go unanswered, as replies to a local ping do)
import BYSTProto
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
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
        /// Packets the kernel sent into the TUN that only mean something on one link
        /// (ICMP redirects, link-scoped multicast): not for any peer.
        var dropped_link_scoped: UInt64 = 0
        /// GSO super-packets from the TUN sent whole (`offloadPacket` frames), and those cut
        /// into packets here because the peer's TUN cannot take them.
        var super_packets_sent_whole: UInt64 = 0
        var super_packets_segmented: UInt64 = 0
        /// `offloadPacket` frames from peers written to the TUN whole.
        var super_packets_received: UInt64 = 0

        func adding(_ other: Counters) -> Counters {
            Counters(
                packets_from_tun: packets_from_tun + other.packets_from_tun, packets_to_tun: packets_to_tun + other.packets_to_tun,
                dropped_no_route: dropped_no_route + other.dropped_no_route,
                dropped_no_session: dropped_no_session + other.dropped_no_session,
                dropped_spoofed_source: dropped_spoofed_source + other.dropped_spoofed_source,
                dropped_malformed: dropped_malformed + other.dropped_malformed,
                dropped_tun_write: dropped_tun_write + other.dropped_tun_write,
                dropped_link_scoped: dropped_link_scoped + other.dropped_link_scoped,
                super_packets_sent_whole: super_packets_sent_whole + other.super_packets_sent_whole,
                super_packets_segmented: super_packets_segmented + other.super_packets_segmented,
                super_packets_received: super_packets_received + other.super_packets_received)
        }
    }
    private var ownCounters = Counters()
    /// This pump's counters and the data plane's (`byst status`).
    var counters: Counters {
        guard let plane = node.dataPlane?.tunCounters else { return ownCounters }
        return ownCounters.adding(plane)
    }

    init(device: TunDevice, extraQueues: [TunDevice] = [], mtu: Int, node: Node) {
        self.device = device
        self.extraQueues = extraQueues
        self.mtu = mtu
        self.node = node
        writer = TunPacketWriter(device: device, mtu: mtu, writesWhole: device.vnetHeader && node.tunOffloads != nil)
        readers = ([device] + extraQueues).map { TunReader(device: $0) }
        loopChannels = Array(repeating: nil, count: readers.count)
        previousLoopReadCycle = Array(repeating: 0, count: readers.count)
        rebuildRoutes()
    }

    /// The routing table from the node's peers (again after a reload changed them).
    func rebuildRoutes() {
        routes = AllowedIPs<Int>()
        routedPeers = node.peers
        for (index, peer) in node.peers.enumerated() {
            peer.routeIndex = index
            for prefix in peer.config.allowedIPs { routes.insert(prefix, peer: index) }
        }
    }

    /// The peers `routes` indexes, as of the last rebuild: a peer removed since (its links
    /// may still deliver a last packet) is no longer at its index, so nobody's sources are its.
    private var routedPeers: [PeerRuntime] = []

    /// `peer`'s index in `routes`, or -1 (owns no source) if a reload removed it.
    private func routeIndex(of peer: PeerRuntime) -> Int {
        let index = peer.routeIndex
        return index >= 0 && index < routedPeers.count && routedPeers[index] === peer ? index : -1
    }

    /// `readingTun` false: the data plane reads the TUN (and writes what it carries), so
    /// neither the reader threads nor the loop read it here.
    private var readsTun = true

    func start(readingTun: Bool) {
        readsTun = readingTun
        guard readingTun else { return }
        let pump = NIOLoopBound(self, eventLoop: node.eventLoop)
        let loop = node.eventLoop
        // Each queue is read in order, by its thread or by the loop (TunReader); the kernel
        // keeps a flow on one queue, so flows stay in order.
        for (index, reader) in readers.enumerated() {
            reader.start(
                deliver: { batch in loop.execute { pump.value.fromTun(batch, reader: index) } },
                handBack: { loop.execute { pump.value.loopTookOver(queue: index) } })
            openLoopChannel(queue: index)
        }
    }

    /// Each queue's channel for reading on the loop (on a duplicate descriptor, which the
    /// channel owns). If it cannot be set up, that queue's thread reads all the time.
    private var loopChannels: [Channel?] = []
    /// When each queue's last loop read cycle ended (`TunReadPolicy.loopCycleShouldLookForBacklog`).
    private var previousLoopReadCycle: [UInt64] = []

    private func openLoopChannel(queue: Int) {
        let pump = NIOLoopBound(self, eventLoop: node.eventLoop)
        let reader = readers[queue]
        let descriptor = dup(reader.device.fd)
        guard descriptor >= 0 else {
            return node.logger.warning("tun: cannot read queue \(queue) on the event loop (dup: errno \(errno)); its thread reads")
        }
        let opened = NIOPipeBootstrap(group: node.eventLoop)
            .channelOption(.autoRead, value: false)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: TunBatch.readSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TunLoopReadHandler(pump: pump.value, queue: queue))
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
        opened.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                loopChannels[queue] = channel
                reader.loopReadingAvailable(true)
            case .failure(let error):
                Glibc.close(descriptor)
                node.logger.warning("tun: cannot read queue \(queue) on the event loop (\(error)); its thread reads")
            }
        }
    }

    /// The reader thread of `queue` stopped reading (behind its last batch): the loop reads
    /// (or, if its channel has gone meanwhile, gives reading straight back).
    func loopTookOver(queue: Int) {
        guard let channel = loopChannels[queue] else { return readers[queue].handToThread() }
        channel.read()
    }

    /// A read cycle on the loop ended: pumps what it routed, and tells whether the loop
    /// keeps reading (false: it fell behind, and the reader thread takes over).
    func finishLoopReadCycle(queue: Int, packets: Int, bytes: Int) -> Bool {
        // NIO reads one packet per wake-up; what else is waiting shows whether the loop
        // keeps up (and is routed in this cycle, with the first).
        var packets = packets, bytes = bytes
        let now = Clocks.monotonic()
        defer { previousLoopReadCycle[queue] = now }
        if TunReadPolicy.loopCycleShouldLookForBacklog(sincePreviousCycle: now &- previousLoopReadCycle[queue]),
           readers[queue].readIfIdle(into: &loopBatch) {
            packets += loopBatch.count
            bytes += loopBatch.packetBytes
            loopBatch.forEach { route($0) }
        }
        pumpTouchedSessions()
        guard TunReadPolicy.loopCycleFellBehind(packets: packets, bytes: bytes) else { return true }
        readers[queue].handToThread()
        return false
    }

    func routeReadOnLoop(_ read: UnsafeRawBufferPointer) {
        route(read)
    }

    /// A packet the data plane read but does not carry (its peer has no plane links now).
    func routeFromPlane(_ read: UnsafeRawBufferPointer) {
        route(read)
        pumpTouchedSessions()
    }

    /// The loop's channel for `queue` closed: its thread reads from now on.
    func loopReadingEnded(queue: Int) {
        readers[queue].loopReadingAvailable(false)
        loopChannels[queue] = nil
        if readers[queue].readsOnLoop { readers[queue].handToThread() }
    }

    func stop() {
        for reader in readers { reader.stop() }
        for channel in loopChannels { channel?.close(promise: nil) }
        loopChannels = Array(repeating: nil, count: readers.count)
    }

    func closeDevices() {
        device.close()
        for queue in extraQueues { queue.close() }
    }

    var droppedByReader: UInt64 { readers.reduce(0) { $0 + $1.droppedBatches } }
    var readerHandOvers: UInt64 { readers.reduce(0) { $0 + $1.readerHandOvers } }
    var queuesReadOnLoop: Int { readers.filter(\.readsOnLoop).count }

    /// `reader`: the index of the reader thread (queue) that read the batch.
    func fromTun(_ batch: TunBatch, reader: Int) {
        readers[reader].batchDelivered()
        batch.forEach { route($0) }
        pumpTouchedSessions()
    }

    /// A packet we write to the TUN is often answered inside that write (a local socket's
    /// ACK, an ICMP echo reply). Reading it here, in the same event-loop cycle, saves a
    /// wake-up on the reply's path. Only while the reader thread has nothing in flight to us,
    /// so no flow is reordered. (Reading it at once, before the rest of the record is
    /// handled, measured no faster: docs/perf-log/2026-11-27-tun-speed-issue-7.md.)
    private var readAfterWriteScheduled = false
    private var readAfterWritePolicy = ReadAfterWritePolicy()
    private var loopBatch = TunBatch()

    private func scheduleReadAfterWrite() {
        guard readsTun, !readAfterWriteScheduled, readAfterWritePolicy.shouldRead() else { return }
        readAfterWriteScheduled = true
        node.endOfTick.wantReadAfterWrite()
    }

    /// At the end of every tick (`EndOfTick`): reads if a TUN write asked for it.
    func readAfterWrite() {
        guard readAfterWriteScheduled else { return }
        readAfterWriteScheduled = false
        var found = false
        // A small answer (an ACK, an echo reply) is usually the whole answer: looking for
        // more would mostly find the queue empty. A big one (a local sender's data, let
        // out by the ACK we wrote) is read on as a batch.
        for reader in readers where reader.readIfIdle(into: &loopBatch, stopAfterSmall: ReadAfterWritePolicy.smallAnswerBytes) {
            found = true
            loopBatch.forEach { route($0) }
        }
        readAfterWritePolicy.record(found: found)
        pumpTouchedSessions()
    }

    /// Sessions that were given packets since the last pump (a handful: an array beats a set).
    private var touchedSessions: [SessionRuntime] = []
    /// Parses and frames what is read (shared with the data plane's path).
    private var packetReader = TunPacketReader()

    /// One read from the TUN: the virtio-net header (with offloads), then the packet.
    private func route(_ read: UnsafeRawBufferPointer) {
        ownCounters.packets_from_tun += 1
        guard let (header, packet) = packetReader.parse(read, vnetHeader: device.vnetHeader) else { return drop(.malformed) }
        guard !packet.isLinkScoped(packetReader.scratch) else { return drop(.linkScoped) }
        guard let peerIndex = routes.lookup(packet.destination) else { return drop(.noRoute) }
        guard let session = node.peers[peerIndex].sessionForNewStream(), session.inspect({ $0.hasLinks }) else {
            return drop(.noSession)
        }
        let hash = packet.flowHash(packetReader.scratch)
        if !touchedSessions.contains(where: { $0 === session }) { touchedSessions.append(session) }
        let whole = packetReader.fitsWhole(header: header, peerTakesOffloadPackets: session.peerTakesOffloadPackets,
                                     maxPayload: session.peerMaxPayload)
        if header.isGSO {
            if whole { ownCounters.super_packets_sent_whole += 1 } else { ownCounters.super_packets_segmented += 1 }
        }
        let framed = packetReader.forEachFrame(header: header, packet: packet, whole: whole, mtu: mtu) { frame, offloadHeader in
            queue(frame, offloadHeader: offloadHeader, hash: hash, on: session)
        }
        if !framed { drop(.malformed) }
    }

    private func pumpTouchedSessions() {
        for session in touchedSessions { session.pumpNow() }
        touchedSessions.removeAll(keepingCapacity: true)
    }

    private func queue(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?, hash: UInt64, on session: SessionRuntime) {
        if session.machine.sendPacket(packet, offloadHeader: offloadHeader, flowHash: hash) {
            session.metrics.counts.packetsSent += 1
        } else {
            node.metrics.packetDropped(.queueFull)
        }
    }

    private func drop(_ reason: PacketDropReason) {
        switch reason {
        case .malformed: ownCounters.dropped_malformed += 1
        case .noRoute: ownCounters.dropped_no_route += 1
        case .noSession: ownCounters.dropped_no_session += 1
        case .spoofedSource: ownCounters.dropped_spoofed_source += 1
        case .tunWrite: ownCounters.dropped_tun_write += 1
        case .linkScoped: ownCounters.dropped_link_scoped += 1
        case .queueFull: break
        }
        node.metrics.packetDropped(reason)
    }

    /// Checks and writes what peers send (shared with the data plane's path).
    private var writer: TunPacketWriter

    func fromPeer(_ packet: UnsafeRawBufferPointer, peer: PeerRuntime) {
        writer.write(packet, from: routeIndex(of: peer), routes: routes) { countWrite($0) }
    }

    /// An `offloadPacket` frame: the kernel segments it, or — without offloads here — we do.
    func offloadedFromPeer(_ frame: UnsafeRawBufferPointer, peer: PeerRuntime) {
        writer.writeOffloaded(frame, from: routeIndex(of: peer), routes: routes) { countWrite($0) }
    }

    /// Counts a write's outcome; a write (made or failed) asks for the read after it.
    private func countWrite(_ outcome: TunPacketWriter.Outcome) {
        switch outcome {
        case .written: ownCounters.packets_to_tun += 1
        case .writtenWhole: ownCounters.super_packets_received += 1
        case .malformed: return drop(.malformed)
        case .spoofedSource: return drop(.spoofedSource)
        case .writeFailed: drop(.tunWrite)
        }
        scheduleReadAfterWrite()
    }
}
