// Drives one SessionMachine on the node's event loop:
//
//   LinkHandler ─receive─▶ machine ─events─▶ stream endpoints (port forwards)
//                        └ packets only (PacketRecord) ─▶ LoopPackets ─▶ the data plane writes them
//   endpoints ─send/finish/consumed─▶ machine ─▶ schedulePump ─▶ every link's pump()
//   one timer, re-armed from machine.nextDeadline ─▶ poll ─▶ pings, dead links, expiry
import BYSTProto
import Logging
import NIOCore

/// Something that consumes one stream's events (a port-forward socket).
protocol StreamEndpoint: AnyObject {
    func streamData(_ bytes: ByteBuffer)
    func streamFinished()
    func streamReset(_ code: Frame.ResetCode)
    func streamWritable()
    func streamClosed()
}

final class SessionRuntime {
    let node: Node
    unowned let peer: PeerRuntime
    let sessionID: [UInt8]
    var machine: SessionMachine
    private(set) var links: [LinkID: LinkHandler] = [:]
    private var endpoints: [UInt32: StreamEndpoint] = [:]
    private var timer: Scheduled<Void>?
    private var pumpScheduled = false
    /// Something changed since the last pump: the scheduled pump has work (it is skipped
    /// when `pumpNow` ran in between, as on the TUN path).
    private var pumpWanted = false
    let createdAt = Clocks.monotonic()
    /// The peer's TUN takes offloaded packets (negotiated `gsoPackets`), and the largest record
    /// payload it accepts (from its hello): a super-packet that does not fit is segmented here.
    var peerTakesOffloadPackets = false
    var peerMaxPayload = 0
    /// The peer's counters (shared by its sessions): records, packets, RTT, and bytes for its links.
    let metrics: PeerMetrics

    init(node: Node, peer: PeerRuntime, sessionID: [UInt8], role: SessionMachine.Role) {
        self.node = node
        self.peer = peer
        self.sessionID = sessionID
        self.metrics = node.metrics.peer(named: peer.config.name)
        self.machine = SessionMachine(
            role: role, config: node.sessionConfig, now: Clocks.monotonic(), instance: UInt64.random(in: 1...UInt64.max))
        rearmTimer()
    }

    var logger: Logger {
        var logger = node.logger
        logger[metadataKey: "peer"] = "\(peer.config.name)"
        logger[metadataKey: "session"] = "\(sessionID.prefix(4).hexString)"
        return logger
    }

    // MARK: Links

    func attach(_ link: LinkHandler) {
        links[link.id] = link
        pumpOrder = links.keys.sorted()
        machine.linkUp(link.id, now: Clocks.monotonic(), striping: link.negotiatedFeatures.contains(.streamStriping),
                       sequencedPackets: link.negotiatedFeatures.contains(.sequencedPackets),
                       idleKeepalive: link.negotiatedFeatures.contains(.idleKeepalive),
                       closeReasons: link.negotiatedFeatures.contains(.closeReasons))
        schedulePump()
        node.tun?.publishRoutes(peer: peer)
        if links.count == 1 { node.sessionRegainedLink(self) }
    }

    func detach(_ link: LinkHandler) {
        guard links.removeValue(forKey: link.id) != nil else { return }
        pumpOrder.removeAll { $0 == link.id }
        machine.linkDown(link.id, now: Clocks.monotonic())
        if links.isEmpty { logger.info("session has no links; streams wait \(node.sessionConfig.linger) for a reconnect") }
        schedulePump()
        node.tun?.publishRoutes(peer: peer)
        if links.isEmpty { node.sessionLostLinks(self, closedByRemote: link.closedByRemote) }
    }

    func receive(_ payload: ByteBuffer, from link: LinkHandler) {
        metrics.counts.recordsReceived += 1
        if receivePackets(payload, from: link) { return }
        do throws(SessionError) {
            let events = try machine.receive(payload, from: link.id, now: Clocks.monotonic())
            handle(events, from: link)
            machine.recycleEvents(consume events)
        } catch {
            // Data beyond the credit we gave: the peer broke the stream or session buffer cap.
            if case .flowControlViolation(let stream) = error {
                node.metrics.limitHit(stream == 0 ? .sessionBuffer : .streamBuffer)
            }
            link.fail("session protocol error: \(error)")
        }
        if inspect({ $0.isRetired(link.id) }) { link.closeRetired() }
        schedulePump()
    }

    /// The fast path of a TUN link: a record of packet frames only goes straight to the TUN,
    /// without frames, events or a pump — nothing in the session changes but the link's
    /// receive time. False (nothing done) for any other record, which `receive` decodes.
    private func receivePackets(_ payload: ByteBuffer, from link: LinkHandler) -> Bool {
        guard let loopPackets = node.tun?.loopPackets else { return false }
        let sequenced = link.negotiatedFeatures.contains(.sequencedPackets)
        return payload.withUnsafeReadableBytes { bytes in
            guard let count = PacketRecord.packetCount(bytes, sequenced: sequenced) else { return false }
            let plane = link.plane?.owner
            PacketRecord.forEachPacket(bytes) { frame, offloaded, sequence in
                loopPackets.fromPeer(frame, offloaded: offloaded, sequence: sequence, via: plane, peer: peer)
            }
            // After the writes: bookkeeping is off the packets' path.
            machine.noteReceived(payloadBytes: bytes.count, on: link.id, now: Clocks.monotonic(), traffic: true)
            metrics.counts.packetsReceived += count
            return true
        }
    }

    /// Reads the machine where it lies: a method called on `machine` straight from this class
    /// copies the whole struct first (a retain and a release per table), on every record.
    func inspect<T>(_ read: (inout SessionMachine) -> T) -> T { read(&machine) }

    /// Runs every link's pump once, at the end of the current event-loop tick: many events
    /// in one read cycle cost one flush per link.
    func schedulePump() {
        pumpWanted = true
        guard !pumpScheduled else { return }
        pumpScheduled = true
        node.endOfTick.wantPump(self)
    }

    /// Called by `EndOfTick` for `schedulePump`.
    func runScheduledPump() {
        pumpScheduled = false
        if pumpWanted { pumpNow() }
    }

    /// The keys of `links` in id order, for `pumpNow` (kept with `links`: no sort per pump).
    private var pumpOrder: [LinkID] = []

    /// Pumps every link right away (the TUN path: a batch of packets is already one task,
    /// so deferring would only add a loop iteration to each packet's latency).
    func pumpNow() {
        pumpWanted = false
        // Each link is looked up before it runs: pumping can close it, and closing removes
        // it from `links` and `pumpOrder` (the loop walks the order as it was).
        for id in pumpOrder {
            guard let link = links[id] else { continue }
            let sealed = link.recordsSealed
            link.pump()
            if link.recordsSealed > sealed { metrics.counts.recordsSent += Int(link.recordsSealed - sealed) }
            if inspect({ $0.isRetired(id) }) { link.closeRetired() }
        }
        rearmTimer()
    }

    /// When `timer` fires.
    private var timerDeadline: Nanoseconds = 0

    private func rearmTimer() {
        // A shut-down session (its peer removed by a reload, or the node stopping) keeps no
        // timer: its peer may be gone by the time one would fire.
        guard !isShutDown, let deadline = inspect({ $0.nextDeadline }) else { return cancelTimer() }
        // A timer that fires no later is kept (it polls and re-arms): most pumps leave the
        // deadline where it was, and re-scheduling costs more than the packet.
        if timer != nil, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = node.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [self] in
            timer = nil
            // What the data plane saw arrive keeps its links alive.
            for link in links.values { link.foldPlaneCounters() }
            let now = Clocks.monotonic()
            handle(machine.poll(now: now))
            for link in links.values {
                guard let shared = link.plane?.shared else { continue }
                shared.idle.store(inspect { $0.linkIsIdle(link.id, now: now) }, ordering: .relaxed)
            }
            schedulePump()
            rearmTimer()
        }
    }

    /// `link`: the link the events' record came on, if any.
    private func handle(_ events: [SessionEvent], from link: LinkHandler? = nil) {
        for event in events {
            switch event {
            case .streamOpened(let id, let target):
                node.acceptStream(id, target: target, in: self)
            case .streamData(let id, let bytes):
                endpoints[id]?.streamData(bytes)
            case .streamFinished(let id):
                endpoints[id]?.streamFinished()
            case .streamReset(let id, let code):
                endpoints.removeValue(forKey: id)?.streamReset(code)
            case .streamWritable(let id):
                endpoints[id]?.streamWritable()
            case .streamClosed(let id):
                endpoints.removeValue(forKey: id)?.streamClosed()
            case .linkDead(let id):
                let link = links[id]
                // Its `linkClosing` frame, if queued, goes out if the socket takes it now.
                link?.pump()
                link?.fail("no traffic for \(node.sessionConfig.deadLinkTimeout): dead link")
            case .peerClosingLink(let id, let reason):
                links[id]?.peerClosing(reason)
            case .goAway:
                // Its links closing now, even with a reset, is no fault; links that come up
                // later (the peer back, another gateway) are not marked.
                for link in links.values { link.peerAnnouncedShutdown = true }
                logger.info("peer is shutting down the session")
            case .packet(let bytes):
                metrics.counts.packetsReceived += 1
                bytes.withUnsafeReadableBytes { node.tun?.loopPackets.fromPeer($0, offloaded: false, peer: peer) }
            case .offloadPacket(let bytes):
                metrics.counts.packetsReceived += 1
                bytes.withUnsafeReadableBytes { node.tun?.loopPackets.fromPeer($0, offloaded: true, peer: peer) }
            case .sequencedPacket(let seq, let bytes, let offloaded):
                metrics.counts.packetsReceived += 1
                let plane = link?.plane?.owner
                bytes.withUnsafeReadableBytes { node.tun?.loopPackets.fromPeer($0, offloaded: offloaded, sequence: seq, via: plane, peer: peer) }
            case .rttMeasured(let id, let rtt):
                metrics.observeRTT(rtt)
                if let link = links[id] { link.slot?.rttMeasured(link, rtt: rtt.nanoseconds) }
            case .limitReached(.streams):
                node.limitHit(.streamsPerSession, "the peer opened more than \(node.sessionConfig.maxStreams) streams; refused", logger: logger)
            case .limitReached(.sessionBuffer):
                node.limitHit(.sessionBuffer, "streams hold \(node.sessionConfig.sessionSendBufferLimit) bytes unacknowledged; their writers wait",
                              level: .info, logger: logger)
            case .expired:
                logger.info("session expired: no link came back within \(node.sessionConfig.linger)")
                cancelTimer()
                peer.sessionExpired(self)
            }
        }
    }

    // MARK: Streams (used by port forwards)

    func openStream(target: String, endpoint: StreamEndpoint) -> UInt32? {
        guard let id = machine.openStream(target: target) else {
            if machine.streamCount >= node.sessionConfig.maxStreams {
                node.limitHit(.streamsPerSession, "\(machine.streamCount) streams open; refusing another towards \(target)", logger: logger)
            }
            return nil
        }
        endpoints[id] = endpoint
        schedulePump()
        return id
    }

    func register(_ endpoint: StreamEndpoint, for id: UInt32) { endpoints[id] = endpoint }

    func send(_ data: inout ByteBuffer, on id: UInt32) -> Int {
        let taken = machine.send(&data, on: id)
        if taken > 0 { schedulePump() }
        if data.readableBytes > 0 { handle(machine.pendingEvents()) }
        return taken
    }

    func finish(_ id: UInt32) {
        machine.finish(id)
        schedulePump()
    }

    func reset(_ id: UInt32, code: Frame.ResetCode) {
        endpoints[id] = nil
        machine.reset(id, code: code)
        // Freed send buffer may wake writers the session buffer cap stopped.
        handle(machine.pendingEvents())
        schedulePump()
    }

    func consumed(_ count: Int, on id: UInt32) {
        machine.consumed(count, on: id)
        schedulePump()
    }

    /// Shutdown: tell the peer, reset what is open, close the links once that is written.
    /// Set by `shutdown`: no timer is armed again.
    private var isShutDown = false

    func shutdown() {
        isShutDown = true
        for (id, endpoint) in endpoints {
            machine.reset(id, code: .cancelled)
            endpoint.streamReset(.cancelled)
        }
        endpoints.removeAll()
        machine.goAway()
        for id in pumpOrder { links[id]?.pump() }
        cancelTimer()
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }
}
