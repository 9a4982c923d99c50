// The data plane's TUN side: reading and routing packets to links, writing received packets
// (as TunPump does on the loop, for the links the plane owns). Plane thread only.
import BYSTProto
import NIOCore
import Tun

extension DataPlane {
    /// epoll says the TUN has packets. Sparse traffic (a ping) leaves no backlog: a first
    /// packet that is small is all there is, and a second read would only say EAGAIN. A wake
    /// soon after the last one reads on to the budgets (TunReadPolicy's backlog rule).
    func tunReadable() {
        let now = Clocks.monotonic()
        let sparse = !TunReadPolicy.loopCycleShouldLookForBacklog(sincePreviousCycle: now &- previousTunWake)
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

    /// One read from the TUN (as `TunPump.route`, for peers with plane links).
    func route(_ read: UnsafeRawBufferPointer) {
        countersChanged = true
        counters.packets_from_tun += 1
        guard let (header, packet) = packetReader.parse(read, vnetHeader: device.vnetHeader) else { return toLoop(read) }
        guard !packet.isLinkScoped(packetReader.scratch) else { return counters.dropped_link_scoped += 1 }
        guard let peerIndex = routes.routes.lookup(packet.destination), peerIndex < routes.peers.count else { return toLoop(read) }
        let peer = routes.peers[peerIndex]
        guard !peer.sendLinks.isEmpty else { return toLoop(read) }
        let hash = packet.flowHash(packetReader.scratch)
        guard let link = links[peer.sendLinks[Int(hash % UInt64(peer.sendLinks.count))]] else { return toLoop(read) }
        let whole = packetReader.fitsWhole(header: header, peerTakesOffloadPackets: peer.takesOffloadPackets,
                                           maxPayload: link.peerMaxPayload)
        if header.isGSO {
            if whole { counters.super_packets_sent_whole += 1 } else { counters.super_packets_segmented += 1 }
        }
        var sent = 0
        let framed = packetReader.forEachFrame(header: header, packet: packet, whole: whole, mtu: mtu) { frame, offloadHeader in
            if link.appendPacket(frame, offloadHeader: offloadHeader) { sent += 1 }
        }
        if !framed { counters.dropped_malformed += 1 }
        if let failure = link.sealFailure { return close(link, reason: "sealing: \(failure)") }
        if sent > 0 {
            link.shared.packetsOut.add(UInt64(sent), ordering: .relaxed)
            if link.openRecord != nil || link.outbound.readableBytes > 0, dirty.last !== link { dirty.append(link) }
        }
    }

    /// A packet the plane does not carry (no route, or its peer has no plane links now): the
    /// loop routes it as it would have read it (and counts its drops).
    func toLoop(_ read: UnsafeRawBufferPointer) {
        counters.packets_from_tun -= 1
        var bytes = ByteBuffer()
        bytes.writeBytes(read)
        let pump = self.pump, copy = bytes
        loop.execute { copy.withUnsafeReadableBytes { pump.value.routeFromPlane($0) } }
    }

    /// A record of packet frames only, from `link`: each packet to the TUN. False (nothing
    /// done) for any other payload.
    func writePackets(_ payload: ByteBuffer, from link: DataPlaneLink) -> Bool {
        payload.withUnsafeReadableBytes { bytes in
            guard let count = PacketRecord.packetCount(bytes) else { return false }
            // A link whose peer is gone (`noPeer`) owns no source: its packets are dropped.
            let sender = link.peerIndex, table = routes.routes
            PacketRecord.forEachPacket(bytes) { frame, offloaded in
                if offloaded {
                    writer.writeOffloaded(frame, from: sender, routes: table) { countWrite($0) }
                } else {
                    writer.write(frame, from: sender, routes: table) { countWrite($0) }
                }
            }
            link.shared.packetRecordsOpened.add(1, ordering: .relaxed)
            link.shared.packetsIn.add(UInt64(count), ordering: .relaxed)
            link.shared.payloadBytesIn.add(UInt64(bytes.count), ordering: .relaxed)
            countersChanged = true
            return true
        }
    }

    /// Counts a write's outcome (as `TunPump` does for its own).
    func countWrite(_ outcome: TunPacketWriter.Outcome) {
        switch outcome {
        case .written: counters.packets_to_tun += 1
        case .writtenWhole: counters.super_packets_received += 1
        case .malformed: return counters.dropped_malformed += 1
        case .spoofedSource: return counters.dropped_spoofed_source += 1
        case .writeFailed: return counters.dropped_tun_write += 1
        }
        wroteToTun = true
    }
}
