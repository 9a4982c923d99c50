// A plain link handed to the data plane (DataPlane.swift) once established:
//
//   handOff: socket (our duplicate), the machine's record layer (LinkMachine.handOff) ─▶ plane; NIO's channel closes
//   pump ─▶ session payloads (compressed as configured) ─▶ plane seals and writes, in order
//   plane ─▶ planeReceived (records not of packets only) ─▶ session.receive
//         ─▶ planeWritable (room again) ─▶ session pump;  planeClosed ─▶ link down
//   session timer, scrape ─▶ foldPlaneCounters: the plane's counters into metrics and machine
import BYSTProto
import NIOCore

/// What the loop keeps of a link the data plane owns.
struct PlaneLinkState {
    let key: UInt64
    /// The plane that owns the link (one per TUN queue).
    let owner: DataPlane
    let shared: DataPlaneLinkShared
    /// The shared counters as last folded into the session and metrics.
    var folded = Counts()
    /// The plane reported the link closed (counted out of `TunService.linksOnPlanes`).
    var leftPlane = false
    /// The routes the plane has say the link is retiring (no more packets on it).
    var retirePublished = false
    /// A batch buffer that carried nothing, kept for the next pump.
    var idleRecords: LaidOutRecords?
    /// Bytes in the last batch sent to the plane (sizes the next one's buffer).
    var lastBatchBytes = 0

    struct Counts: Equatable {
        var bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, recordsSealed: UInt64 = 0, packetRecords: UInt64 = 0
        var packetsIn: UInt64 = 0, payloadBytesIn: UInt64 = 0, packetsOut: UInt64 = 0, lastReceived: UInt64 = 0

        init() {}

        init(_ shared: DataPlaneLinkShared) {
            bytesIn = shared.bytesIn.load(ordering: .relaxed)
            bytesOut = shared.bytesOut.load(ordering: .relaxed)
            recordsSealed = shared.recordsSealed.load(ordering: .relaxed)
            packetRecords = shared.packetRecordsOpened.load(ordering: .relaxed)
            packetsIn = shared.packetsIn.load(ordering: .relaxed)
            payloadBytesIn = shared.payloadBytesIn.load(ordering: .relaxed)
            packetsOut = shared.packetsOut.load(ordering: .relaxed)
            lastReceived = shared.lastReceived.load(ordering: .relaxed)
        }
    }
}

extension LinkHandler {
    /// At the end of a read cycle: an established plain link with nothing in flight through
    /// NIO moves to the data plane (TUN nodes only). Links that compress TUN packets stay:
    /// the plane sends packets as they are.
    func handOffToDataPlaneIfReady(_ context: ChannelHandlerContext) {
        guard plane == nil, node.config.tun?.dataPlane == true, isEstablished, let session,
              writeGate == nil, nioWritesInFlight == 0, !closingAfterFlush, machine.compressionScope != .all,
              let socket = directSocket, socket.isOpen, !session.inspect({ $0.isRetiring(id) }),
              let tun = node.tun, let dataPlane = tun.planeForNewLink(of: session.peer, sequenced: negotiatedFeatures.contains(.sequencedPackets)),
              dataPlane.isRunning,
              let records = machine.handOff(), let descriptor = socket.takeDescriptor()
        else { return }
        directSocket = nil
        let key = tun.nextPlaneKey()
        let shared = DataPlaneLinkShared(now: Clocks.monotonic())
        let link = DataPlaneLink(key: key, fd: descriptor, machine: records, shared: shared,
                                 peerIndex: tun.loopPackets.routeIndex(of: session.peer))
        link.sequencedPackets = negotiatedFeatures.contains(.sequencedPackets)
        plane = PlaneLinkState(key: key, owner: dataPlane, shared: shared)
        tun.linkJoined(dataPlane)
        // Packets this link brought so far reach the TUN before those the plane opens next.
        tun.loopPackets.flushToTun(via: dataPlane)
        dataPlane.post(.adopt(link, handler: NIOLoopBound(self, eventLoop: context.eventLoop)))
        tun.publishRoutes(peer: session.peer)
        logger.debug("link handed to the data plane")
        // NIO's descriptor only: the plane's duplicate keeps the connection (no shutdown(2)).
        context.close(promise: nil)
    }

    /// `pump` for a link the plane owns: the session's payloads go to the plane to be sealed.
    func pumpToPlane() {
        guard let plane, let session, isEstablished else { return }
        checkPlaneRetiring()
        // Sized by what the last batch carried: bulk data gets room for a whole batch at once
        // (growing would copy it), an ack or a ping a small buffer. The last batch's buffer
        // if it carried nothing (most pumps have nothing to send).
        let full = Self.writeBatch + machine.peerMaxPayload + RecordFormat.overhead
        let capacity = plane.lastBatchBytes >= Self.writeBatch / 4 ? full : Self.smallPlaneBatch
        var records = self.plane?.idleRecords.take() ?? LaidOutRecords(capacity: capacity)
        while !plane.shared.backlogged.load(ordering: .relaxed) {
            let header = records.beginRecord()
            var packetFrames = 0
            let payload = session.machine.writePayload(for: id, maxBytes: machine.peerMaxPayload, into: &records.buffer,
                                                       packetFrames: &packetFrames, oneStream: machine.compressionScope != .off)
            if payload == 0 {
                records.abandonRecord(at: header)
                break
            }
            // Compressed before encryption, as on the loop's own links (PROTOCOL.md §4.2).
            machine.layOutRecord(at: header, in: &records, carriesPackets: packetFrames > 0)
            if records.buffer.readableBytes >= Self.writeBatch {
                self.plane?.lastBatchBytes = records.buffer.readableBytes
                plane.owner.post(.send(key: plane.key, records: PlaneRecords(consume records)))
                records = LaidOutRecords(capacity: full)
            }
        }
        guard !records.isEmpty else {
            self.plane?.idleRecords = records
            return
        }
        self.plane?.lastBatchBytes = records.buffer.readableBytes
        // Consumed: the loop keeps no reference, so the plane seals the buffer without a copy.
        plane.owner.post(.send(key: plane.key, records: PlaneRecords(consume records)))
    }

    /// A batch buffer for light traffic: an ack, a ping, a few small writes.
    static let smallPlaneBatch = 16 * 1024

    /// Once the session retires this link, the plane must stop putting packets on it before
    /// the `retire` frame goes out (PROTOCOL.md §5.6): new routes go ahead of that payload.
    func checkPlaneRetiring() {
        guard var plane, !plane.retirePublished, let session, session.inspect({ $0.isRetiring(id) }) else { return }
        plane.retirePublished = true
        self.plane = plane
        node.tun?.publishRoutes(peer: session.peer)
    }

    /// A record the plane opened that is not packets only (or came behind one that was not).
    func planeReceived(_ record: RecordOpener.Opened) {
        guard isEstablished, let session else { return }
        do throws(LinkMachine.Failure) {
            session.receive(try machine.payload(of: record), from: self)
        } catch {
            fail("\(error)")
        }
    }

    func planeWritable() { session?.schedulePump() }

    /// The plane carried packets on this link while the session counted it idle.
    func planeLinkBusy() {
        foldPlaneCounters()
        session?.schedulePump()
    }

    /// The plane closed the socket: on its own (`reason`) or because we asked.
    func planeClosed(reason: String?) {
        if let owner = plane?.owner, plane?.leftPlane == false {
            plane?.leftPlane = true
            node.tun?.linkLeft(owner)
        }
        foldPlaneCounters()
        if let reason, reason.hasPrefix(DataPlaneLink.closedByRemoteReason) || reason.hasSuffix(DataPlaneLink.resetByRemoteReason) {
            closedByRemote = true
        }
        if let reason, isEstablished {
            let expected = reason.hasPrefix("connection closed")
                || (closedByRemote && peerAnnouncedShutdown)
            if expected { logger.info("link down: \(reason)") } else { logger.warning("link closed: \(reason)") }
            noteLoss(reason)
        }
        closed = true
        machine.close()
        session?.detach(self)
        slot?.linkClosed(self)
        node.tun?.publishRoutes(peer: session?.peer)
        linkClosedForWaiters()
    }

    /// The plane's counters since the last fold: into the peer's metrics, the link's receive
    /// time and bytes into the session machine (for dead-link detection), and the recycle check.
    func foldPlaneCounters() {
        guard let shared = plane?.shared, let was = plane?.folded, let session else { return }
        let now = PlaneLinkState.Counts(shared)
        // An idle link's counters mostly stand still (the traffic sample folds them every second).
        if now != was {
            plane?.folded = now
            session.metrics.counts.bytesReceived += Int(now.bytesIn &- was.bytesIn)
            session.metrics.counts.bytesSent += Int(now.bytesOut &- was.bytesOut)
            session.metrics.counts.recordsSent += Int(now.recordsSealed &- was.recordsSealed)
            session.metrics.counts.recordsReceived += Int(now.packetRecords &- was.packetRecords)
            session.metrics.counts.packetsReceived += Int(now.packetsIn &- was.packetsIn)
            session.metrics.counts.packetsSent += Int(now.packetsOut &- was.packetsOut)
            if now.lastReceived != was.lastReceived, isEstablished {
                let bytes = Int(now.payloadBytesIn &- was.payloadBytesIn)
                let traffic = now.packetsIn != was.packetsIn
                session.inspect { $0.noteReceived(payloadBytes: bytes, on: id, now: now.lastReceived, traffic: traffic) }
            }
            if now.packetsOut != was.packetsOut, isEstablished {
                session.inspect { $0.noteWritten(on: id, now: Clocks.monotonic()) }
            }
        }
        slot?.checkRecycle(self)
    }
}
