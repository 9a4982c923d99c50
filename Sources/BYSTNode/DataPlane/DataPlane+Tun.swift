// The data plane's TUN side: reading and routing packets (PacketRouter), writing what peers
// send (TunPacketWriter), handing packets for the loop's links over in batches. Plane thread only.
import BYSTProto
import NIOCore
import Tun

extension DataPlane {
    /// epoll says the TUN has packets. Sparse traffic (a ping) leaves no backlog: a first
    /// packet that is small is all there is, and a second read would only say EAGAIN. A wake
    /// soon after the last one reads on to the budgets.
    func tunReadable() {
        let now = Clocks.monotonic()
        let sparse = !TunReadPolicy.wakeShouldLookForBacklog(sincePreviousWake: now &- previousTunWake)
        previousTunWake = now
        readTun(stopAfterSmall: sparse ? ReadAfterWritePolicy.smallAnswerBytes : nil)
    }

    /// Reads and routes what the TUN has (up to the budgets); whether it found anything.
    /// `stopAfterSmall`: a first read of at most that many bytes is taken as all there is.
    @discardableResult
    func readTun(stopAfterSmall: Int? = nil) -> Bool {
        var count = 0, bytes = 0
        defer { if count > 0 { countersChanged = true } }
        while count < Self.tunBudget, bytes < Self.tunByteBudget, !tunPaused {
            let length: Int?
            do throws(TunDevice.Failure) { length = try device.read(into: tunBuffer) } catch {
                logger.warning("data plane: \(error)")
                break
            }
            guard let length, length > 0 else { break }
            route(UnsafeRawBufferPointer(rebasing: tunBuffer[0..<length]))
            count += 1
            bytes += length
            if count == 1, let small = stopAfterSmall, length <= small { break }
        }
        return count > 0
    }

    /// One read from the TUN: the virtio-net header (with offloads), then the packet.
    func route(_ read: UnsafeRawBufferPointer) {
        counters.packets_from_tun += 1
        guard let (header, packet) = packetReader.parse(read, vnetHeader: device.vnetHeader) else { return counters.drop(.malformed) }
        switch router.route(packet, in: packetReader.scratch) {
        case .drop(let reason):
            counters.drop(reason)
        case .link(let key, let peer):
            guard let link = links[key] else { return counters.drop(.noSession) }
            sendOnLink(link, takesOffloadPackets: router.peers[peer].takesOffloadPackets, header: header, packet: packet)
        case .stripe(let peer):
            sendStriped(peer: peer, header: header, packet: packet)
        case .loop(let peer, let hash):
            batch(header: header, packet: packet, peer: peer, flowHash: hash, into: &toLoop)
            if toLoop.isFull { handToLoop() }
        case .plane(let plane, let peer, let hash):
            guard plane < toPlanes.count else { return counters.drop(.noSession) }
            counters.packets_to_other_planes += 1
            batch(header: header, packet: packet, peer: peer, flowHash: hash, into: &toPlanes[plane])
            if toPlanes[plane].isFull { handToPlanes() }
        }
    }

    /// The packet's frames, for another thread to send on the peer's links there.
    private func batch(header: VirtioNetHeader, packet: IPPacket, peer: Int, flowHash: UInt64, into batch: inout PacketBatch) {
        let whole = packetReader.fitsWhole(header: header, peerTakesOffloadPackets: router.peers[peer].takesOffloadPackets,
                                           maxPayload: router.peers[peer].maxPayload)
        countSuperPacket(header, whole: whole)
        let framed = packetReader.forEachFrame(header: header, packet: packet, whole: whole, mtu: mtu) { frame, offloadHeader in
            batch.append(frame, offloadHeader: offloadHeader, peer: peer, flowHash: flowHash)
        }
        if !framed { counters.drop(.malformed) }
    }

    private func sendOnLink(_ link: DataPlaneLink, takesOffloadPackets: Bool, header: VirtioNetHeader, packet: IPPacket) {
        let whole = packetReader.fitsWhole(header: header, peerTakesOffloadPackets: takesOffloadPackets, maxPayload: link.peerMaxPayload)
        countSuperPacket(header, whole: whole)
        var sent = 0
        let framed = packetReader.forEachFrame(header: header, packet: packet, whole: whole, mtu: mtu) { frame, offloadHeader in
            if link.appendPacket(frame, offloadHeader: offloadHeader) { sent += 1 }
        }
        if !framed { counters.drop(.malformed) }
        if let failure = link.sealFailure { return close(link, reason: "sealing: \(failure)") }
        if sent > 0 {
            link.shared.packetsOut.add(UInt64(sent), ordering: .relaxed)
            wakeIfIdle(link)
            if dirty.last !== link { dirty.append(link) }
        }
    }

    func countSuperPacket(_ header: VirtioNetHeader, whole: Bool) {
        guard header.isGSO else { return }
        if whole { counters.super_packets_sent_whole += 1 } else { counters.super_packets_segmented += 1 }
    }

    /// Hands the packets read for the loop's links over, one hop for the batch (or none: it
    /// joins the last one if the loop has not taken that yet); a loop that has
    /// `maxLoopBatches` still to deliver has fallen behind, and the batch is dropped.
    func handToLoop() {
        guard !toLoop.isEmpty else { return }
        let version = routesVersion
        let handed: LoopHandOver = loopInbox.withLock { inbox in
            // The loop has not taken the last batch yet: these packets join it (no new buffer).
            if let last = inbox.indices.last, inbox[last].version == version, inbox[last].batch.hasRoom(for: toLoop) {
                inbox[last].batch.append(contentsOf: toLoop)
                return .joined
            }
            guard loopBatchesUndelivered.load(ordering: .relaxed) < Self.maxLoopBatches else { return .dropped }
            loopBatchesUndelivered.add(1, ordering: .relaxed)
            inbox.append((toLoop.take(refillingFrom: loopBatchSpares), version))
            return .queued(first: inbox.count == 1)
        }
        switch handed {
        case .joined, .dropped:
            if case .dropped = handed { loopBatchesDropped.add(1, ordering: .relaxed) }
            toLoop.removeAll()
        case .queued(let first):
            // One task for all that wait: the loop takes every batch there when it runs.
            if first, let deliverToLoop { loop.execute(deliverToLoop) }
        }
    }

    private enum LoopHandOver { case joined, queued(first: Bool), dropped }

    /// Hands the packets read for other planes' links over, one hop per plane and round.
    func handToPlanes() {
        for plane in toPlanes.indices where !toPlanes[plane].isEmpty {
            siblings[plane].post(.route(toPlanes[plane].take(refillingFrom: siblings[plane].batchSpares), version: routesVersion))
        }
    }

    /// Packets another plane read for peers whose links are here, already framed. Routed with
    /// another table (a reload in between), a peer index may mean another peer: dropped.
    func sendRouted(_ batch: PacketBatch, version: UInt64) {
        batch.forEach { peer, hash, offloaded, _, bytes in
            guard version == routesVersion else { return counters.drop(.noSession) }
            let header = offloaded ? VirtioNetHeader(bytes) : nil
            let packet = offloaded ? UnsafeRawBufferPointer(rebasing: bytes[VirtioNetHeader.size...]) : bytes
            if peer >= 0, peer < router.peers.count, router.peers[peer].stripes {
                return appendStriped(packet, offloadHeader: header, peer: peer)
            }
            guard let key = router.link(forPeer: peer, flowHash: hash), let link = links[key] else {
                return counters.drop(.noSession)
            }
            if link.appendPacket(packet, offloadHeader: header) {
                link.shared.packetsOut.add(1, ordering: .relaxed)
                wakeIfIdle(link)
                if dirty.last !== link { dirty.append(link) }
            }
            if let failure = link.sealFailure { close(link, reason: "sealing: \(failure)") }
        }
        countersChanged = true
    }

    /// Packets from peers whose links the loop holds (`LoopPackets.fromPeer`).
    func writeToTun(_ batch: PacketBatch) {
        var now: Nanoseconds?
        batch.forEach { sender, sequence, offloaded, sequenced, frame in
            guard sequenced else { return writePacket(frame, offloaded: offloaded, from: sender) }
            if now == nil { now = Clocks.monotonic() }
            receiveSequenced(frame, offloaded: offloaded, sequence: sequence, from: sender, now: now ?? 0)
        }
        if !batch.isEmpty { countersChanged = true }
    }

    /// A record of packet frames only, from `link`: each packet to the TUN. False (nothing
    /// done) for any other payload.
    func writePackets(_ payload: ByteBuffer, from link: DataPlaneLink) -> Bool {
        payload.withUnsafeReadableBytes { bytes in
            guard let count = PacketRecord.packetCount(bytes, sequenced: link.sequencedPackets) else { return false }
            // A link whose peer is gone (`noPeer`) owns no source: its packets are dropped.
            let sender = link.peerIndex
            var now: Nanoseconds?
            PacketRecord.forEachPacket(bytes) { frame, offloaded, sequence in
                guard let sequence else { return writePacket(frame, offloaded: offloaded, from: sender) }
                if now == nil { now = Clocks.monotonic() }
                receiveSequenced(frame, offloaded: offloaded, sequence: sequence, from: sender, now: now ?? 0)
            }
            link.shared.packetRecordsOpened.add(1, ordering: .relaxed)
            link.shared.packetsIn.add(UInt64(count), ordering: .relaxed)
            wakeIfIdle(link)
            link.shared.payloadBytesIn.add(UInt64(bytes.count), ordering: .relaxed)
            countersChanged = true
            return true
        }
    }

    func writePacket(_ frame: UnsafeRawBufferPointer, offloaded: Bool, from sender: Int) {
        if offloaded {
            writer.writeOffloaded(frame, from: sender, router: router) { if counters.count($0) { wroteToTun = true } }
        } else {
            writer.write(frame, from: sender, router: router) { if counters.count($0) { wroteToTun = true } }
        }
    }

    /// A packet written to the TUN is often answered inside the write (an echo reply, a
    /// local socket's ACK): read it now, and it leaves in this round, without a trip
    /// through epoll_wait. The policy backs off while such reads find nothing.
    func readAfterWriting() {
        guard wroteToTun else { return }
        wroteToTun = false
        if readAfterWrite.shouldRead() {
            readAfterWrite.record(found: readTun(stopAfterSmall: ReadAfterWritePolicy.smallAnswerBytes))
        }
    }
}
