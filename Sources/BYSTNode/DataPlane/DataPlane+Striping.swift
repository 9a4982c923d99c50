// Packet striping on the data plane (PROTOCOL.md §5.4, "Packet striping"; docs/ARCHITECTURE.md
// §3.7): packets for a peer with `packet_striping` are numbered and spread over its links
// (PacketStriper), and sequenced packets from a peer are put back in order before the TUN
// (PacketReorder). A striping peer's links all live on one plane, on both sides
// (TunService.planeForNewLink), so the numbering and the reordering are this thread's alone.
// Plane thread only.
import BYSTProto
import CTun

/// A sequenced packet held for reordering: the frame's bytes as they arrived (virtio-net
/// header first when offloaded).
struct HeldPacket {
    var bytes: [UInt8]
    var offloaded: Bool
}

extension DataPlane {
    /// A packet read from the TUN for `peer`, whose packets are striped here.
    func sendStriped(peer: Int, header: VirtioNetHeader, packet: IPPacket) {
        let entry = router.peers[peer]
        let whole = packetReader.fitsWhole(header: header, peerTakesOffloadPackets: entry.takesOffloadPackets, maxPayload: entry.maxPayload)
        countSuperPacket(header, whole: whole)
        let framed = packetReader.forEachFrame(header: header, packet: packet, whole: whole, mtu: mtu) { frame, offloadHeader in
            appendStriped(frame, offloadHeader: offloadHeader, peer: peer)
        }
        if !framed { counters.drop(.malformed) }
    }

    /// One frame's packet, numbered, on the link the peer's striper picks.
    func appendStriped(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?, peer: Int) {
        let size = PacketQueue.frameSize(packetBytes: packet.count, offload: offloadHeader != nil, sequenced: true)
        let picked = stripers[peer, default: PacketStriper(firstSequence: .random(in: 0 ... .max))]
            .pick(among: router.peers[peer].stripeLinks, bytes: size) { key in
                guard !backlog.isBacklogged(key), let link = links[key] else { return nil }
                return link.unsentBytes + max(0, Int(byst_socket_queued(link.fd)))
            }
        guard let (key, sequence) = picked, let link = links[key] else { return counters.drop(.noSession) }
        if link.appendPacket(packet, offloadHeader: offloadHeader, sequence: sequence) {
            counters.packets_striped += 1
            link.shared.packetsOut.add(1, ordering: .relaxed)
            wakeIfIdle(link)
            if dirty.last !== link { dirty.append(link) }
        } else if link.sealFailure == nil {
            // Larger than a record the peer takes (never, with `maxPayload` as published):
            // its number leaves a gap the receiver gives up.
            counters.drop(.malformed)
        }
        if let failure = link.sealFailure { close(link, reason: "sealing: \(failure)") }
    }

    /// A sequenced packet from the peer `sender`: to the TUN when its turn comes.
    func receiveSequenced(_ frame: UnsafeRawBufferPointer, offloaded: Bool, sequence: UInt64, from sender: Int, now: Nanoseconds) {
        // A link no published peer lists owns no source: the writer drops its packets.
        guard sender != PacketRouter.noPeer else { return writePacket(frame, offloaded: offloaded, from: sender) }
        let writeNow = reorders[sender, default: PacketReorder()].receive(seq: sequence, size: frame.count, now: now) {
            HeldPacket(bytes: Array(frame), offloaded: offloaded)
        }
        if writeNow { writePacket(frame, offloaded: offloaded, from: sender) }
        writeReleased(from: sender)
    }

    /// What `sender`'s reorderer let go, in order.
    private func writeReleased(from sender: Int) {
        while let held = reorders[sender]?.popReady() {
            held.bytes.withUnsafeBytes { writePacket($0, offloaded: held.offloaded, from: sender) }
            countersChanged = true
        }
    }

    /// Milliseconds `epoll_wait` may sleep: until the first reorder deadline.
    func reorderTimeout() -> Int32 {
        var first = Nanoseconds.max
        for reorder in reorders.values { if let deadline = reorder.deadline { first = min(first, deadline) } }
        guard first != .max else { return -1 }
        let now = Clocks.monotonic()
        guard first > now else { return 0 }
        return Int32(min((first - now + 999_999) / 1_000_000, 1000))
    }

    /// Gives up the gaps that waited their time, and writes what follows them. Not while a
    /// link still has bytes to read (a busy plane: the missing packet may be among them),
    /// unless the gap has waited twice its time.
    func expireReorders() {
        let hold = PacketReorder<HeldPacket>.Limits.standard.holdTime
        let clock = Clocks.monotonic()
        // A busy plane judges the deadlines one hold time late: each gap gets twice its time.
        let now = readPending ? clock - min(clock, hold) : clock
        // Keys first: mutating an entry while iterating the dictionary would copy it.
        let due = reorders.compactMap { entry in (entry.value.deadline ?? .max) <= now ? entry.key : nil }
        for sender in due {
            reorders[sender]?.expire(now: now)
            writeReleased(from: sender)
        }
        if !due.isEmpty { readAfterWriting() }
    }

    /// A new routing table: every held packet goes out now, under the old one.
    func releaseReorders() {
        for sender in Array(reorders.keys) {
            reorders[sender]?.releaseAll()
            writeReleased(from: sender)
            if let counts = reorders.removeValue(forKey: sender)?.counts { retiredReorderCounts.add(counts) }
        }
    }

    /// The counters with the reorderers' (published after each round).
    var countersWithReordering: TunCounters {
        var snapshot = counters
        var counts = retiredReorderCounts
        for reorder in reorders.values { counts.add(reorder.counts) }
        snapshot.packets_reordered = counts.held
        snapshot.packets_late = counts.late
        snapshot.sequence_gaps_skipped = counts.skipped
        snapshot.reorder_overflows = counts.overflows
        return snapshot
    }
}

extension PacketReorder.Counts {
    mutating func add(_ other: Self) {
        held += other.held
        late += other.late
        skipped += other.skipped
        duplicates += other.duplicates
        restarts += other.restarts
        overflows += other.overflows
    }
}
