// The event loop's side of the TUN. The data plane is the only code that reads and writes
// the TUN device; the loop holds the links the plane does not own (HTTP, TLS, proxied and
// compressing links, and plain links until their handshake is done), so packets for and
// from those peers cross between the two in batches (PacketBatch), one hop per batch:
//
//   plane: TUN read ─▶ PacketRouter says `.loop` ─▶ batch ─▶ deliver ─▶ session's packet
//          queue (the link its flow hashes to) ─▶ one pump per touched session
//   loop links ─▶ SessionRuntime (packet frames) ─▶ fromPeer ─▶ batch ─▶ end of tick ─▶
//          plane: source check ─▶ TUN write
import BYSTProto
import NIOCore

/// Event loop only.
final class LoopPackets {
    private unowned let node: Node
    /// The peers the published router's indexes refer to, and that table's version: a batch
    /// routed with another version (a reload in between) could name the wrong peer, and is dropped.
    private var routedPeers: [PeerRuntime] = []
    private(set) var routesVersion: UInt64 = 0
    /// Packets from peers for the TUN, handed to the plane at the end of the tick.
    private var toTun = PacketBatch()
    private var flushScheduled = false
    /// Sessions given packets by the batch being delivered (a handful: an array beats a set).
    private var touchedSessions: [SessionRuntime] = []
    /// Packets the plane handed over that no session could take any more (its links went
    /// down in between); the plane's own counters hold the rest.
    private(set) var droppedNoSession: UInt64 = 0

    init(node: Node) {
        self.node = node
    }

    /// The peers of a new routing table (whose peer indexes are their positions); its version.
    func peersChanged(_ table: [PeerRuntime]) -> UInt64 {
        flushToTun()
        routedPeers = table
        for (index, peer) in routedPeers.enumerated() { peer.routeIndex = index }
        routesVersion &+= 1
        return routesVersion
    }

    /// `peer`'s index in the published table, or `PacketRouter.noPeer` (owns no source) if a
    /// reload removed it.
    func routeIndex(of peer: PeerRuntime) -> Int {
        let index = peer.routeIndex
        return index >= 0 && index < routedPeers.count && routedPeers[index] === peer ? index : PacketRouter.noPeer
    }

    // MARK: From the TUN, for peers whose links are here

    /// The batches `plane` handed over (`DataPlane.handToLoop`), swapped out with this array.
    private var handedOver: [(batch: PacketBatch, version: UInt64)] = []

    /// Delivers every batch `plane` handed over, and gives their buffers back to it.
    func deliverHandedOver(from plane: DataPlane) {
        plane.loopInbox.withLock { swap(&$0, &handedOver) }
        for index in handedOver.indices {
            deliver(handedOver[index].batch, routesVersion: handedOver[index].version)
            // Moved out first: the plane may reuse the buffer at once, and it must find it unshared.
            let batch = handedOver[index].batch
            handedOver[index].batch = PacketBatch()
            plane.loopBatchSpares.giveBack(batch)
            plane.loopBatchesUndelivered.subtract(1, ordering: .relaxed)
        }
        handedOver.removeAll(keepingCapacity: true)
    }

    private func deliver(_ batch: PacketBatch, routesVersion version: UInt64) {
        batch.forEach { peerIndex, hash, offloaded, _, bytes in
            guard version == routesVersion, peerIndex >= 0, peerIndex < routedPeers.count,
                  let session = routedPeers[peerIndex].sessionForNewStream(), session.inspect({ $0.hasLinks })
            else {
                droppedNoSession += 1
                return node.metrics.packetDropped(.noSession)
            }
            let header = offloaded ? VirtioNetHeader(bytes) : nil
            let packet = offloaded ? UnsafeRawBufferPointer(rebasing: bytes[VirtioNetHeader.size...]) : bytes
            // Cut for a session that takes no super-packets (it changed since the plane looked).
            guard header == nil || session.peerTakesOffloadPackets else {
                droppedNoSession += 1
                return node.metrics.packetDropped(.noSession)
            }
            if session.machine.sendPacket(packet, offloadHeader: header, flowHash: hash) {
                session.metrics.counts.packetsSent += 1
            } else {
                node.metrics.packetDropped(.queueFull)
            }
            if !touchedSessions.contains(where: { $0 === session }) { touchedSessions.append(session) }
        }
        for session in touchedSessions { session.pumpNow() }
        touchedSessions.removeAll(keepingCapacity: true)
    }

    // MARK: From peers, for the TUN

    /// A `packet` frame's packet (`offloaded` false) or an `offloadPacket` frame (its
    /// virtio-net header first) from `peer`, written by the plane at the end of this tick.
    /// `sequence` (packet striping), only for a frame that came on a link of `plane`: that
    /// plane puts the peer's sequenced packets back in order. Sequenced frames on links the
    /// loop holds go to the TUN as they come (PROTOCOL.md §5.4).
    func fromPeer(_ frame: UnsafeRawBufferPointer, offloaded: Bool, sequence: UInt64? = nil, via plane: DataPlane? = nil,
                  peer: PeerRuntime) {
        toTun.append(frame: frame, offloaded: offloaded, sequence: plane == nil ? nil : sequence, peer: routeIndex(of: peer))
        if toTun.isFull { return flushToTun(via: plane) }
        guard !flushScheduled else { return }
        flushScheduled = true
        node.endOfTick.wantTunFlush()
    }

    /// Hands what peers sent to a plane now (`plane`, else the first): `recordsDone`, that
    /// plane's link whose `count` records the loop has just handled — its next records of packets may
    /// go straight to the TUN once these packets are written, by the same thread, before them.
    func flushToTun(recordsDone: DataPlaneLinkShared? = nil, count: Int = 1, via plane: DataPlane? = nil) {
        flushScheduled = false
        guard let plane = plane ?? node.tun?.planes.first else { return toTun.removeAll() }
        if toTun.isEmpty {
            guard let recordsDone else { return }
            // Nothing of this record, nor of any earlier, still on its way to the TUN (a
            // record of stream data): done now, without waking the plane.
            if plane.tunWritesInFlight.load(ordering: .relaxed) == 0 {
                recordsDone.recordsAtLoop.subtract(count, ordering: .relaxed)
                return
            }
        }
        plane.postToTun(&toTun, recordsDone: recordsDone.map { ($0, count) })
    }
}
