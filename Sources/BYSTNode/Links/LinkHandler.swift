// One link: a TCP connection carrying a BYST handshake, then records (PROTOCOL.md §3, §4).
//
//   socket bytes ─▶ LinkMachine ─▶ established: attach to the session │ record payloads ─▶ SessionRuntime.receive
//   SessionRuntime.pump ─▶ pump() ─▶ beginRecord ▸ session frames ▸ finishRecord ([zstd], seal) ─▶ one write
//
// No protocol decisions here: the machines decide, this handler moves bytes and timers.
import BYSTProto
import Glibc
import Logging
import NIOCore

final class LinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let id: LinkID
    let node: Node
    // Not private: machine, closed, directSocket, nioWritesInFlight and closingAfterFlush are
    // also used by LinkHandler+DataPlane.swift.
    /// The link's protocol: handshake, record layer (until handed to the data plane), compression.
    var machine: LinkMachine
    /// Closed by us, by the peer or by the plane (the machine may have closed itself before).
    var closed = false
    /// The remote end closed the connection (FIN or RST), as a crashed process's kernel does
    /// at once; false when we closed it (dead-link timeout, errors, shutdown). The embedded
    /// registry releases a closed client's ports early only then (RegistryServer).
    var closedByRemote = false
    /// The peer sent `goaway` while this link was up: its closing, even with a reset, is no fault.
    var peerAnnouncedShutdown = false
    /// Why the peer closed this link, when it said so (a `linkClosing` frame): `deadLink`
    /// means our writes stopped reaching it (a proxy stopped passing a duplex upload on).
    private(set) var peerCloseReason: LinkCloseReason?
    private static let keptInboundCapacity = 256 * 1024
    private var context: ChannelHandlerContext?
    private(set) var session: SessionRuntime?
    /// The dialing slot that owns this link (initiator side), told when it closes.
    let slot: LinkSlot?
    private var handshakeTimeout: Scheduled<Void>?
    private(set) var remoteDescription = "?"
    /// How the link's bytes travel, for `byst status` and the "link up" line: `byst` (plain
    /// TCP), `raw` (BYST on an HTTP listener, as through CONNECT), `connect` (dialled through a
    /// CONNECT tunnel), or the HTTP mode: `duplex`, `split`, `websocket`.
    var transport = "byst"
    /// Wire bytes through this handler's channel, and through the data plane once it owns the link.
    var wireBytesIn: UInt64 { loopBytesIn + (plane?.shared.bytesIn.load(ordering: .relaxed) ?? 0) }
    var wireBytesOut: UInt64 { loopBytesOut + (plane?.shared.bytesOut.load(ordering: .relaxed) ?? 0) }
    /// Monotonic time the handshake completed (`byst status`: `handshake_seconds_ago`).
    private(set) var establishedAt: Nanoseconds?
    private var loopBytesIn: UInt64 = 0
    private var loopBytesOut: UInt64 = 0
    /// Set once the data plane owns the socket and the record layer (LinkHandler+DataPlane.swift).
    var plane: PlaneLinkState?
    /// Records sealed on this link so far (its send nonce), for `byst_peer_sent_records_total`.
    var recordsSealed: UInt64 { machine.recordsSealed }
    var linkIndex: UInt16 { machine.peer?.hello.linkIndex ?? 0 }
    /// What both hellos offered (empty before the handshake completes).
    var negotiatedFeatures: LinkFeatures { machine.peer?.features ?? [] }
    var compressionCounters: RecordCompressor.Counters { machine.compressionCounters }
    /// What we compress on this link: the negotiated feature AND our setting for the peer.
    var compressionScope: CompressionScope { machine.compressionScope }
    /// Records are batched into writes of about this size.
    static let writeBatch = 256 * 1024
    /// A small batch buffer, reused: once the socket has taken a batch nothing else holds
    /// it, so light traffic (a ping, an ACK) allocates nothing per record. Bulk batches use
    /// the node's full-size buffers (`Node.writeBuffers`); at most `spareCapacity` bytes stay
    /// with a link.
    private var spareBuffer: ByteBuffer?
    private static let spareCapacity = 32 * 1024
    /// Backpressure from elsewhere than this socket (split mode's POST queue).
    var writeGate: LinkWriteGate?
    /// A plain link's socket descriptor, as its channel owns it (set before the handler is
    /// added); once the link is established it is duplicated into `directSocket` — not
    /// before, so a flood of connections that never authenticate costs no extra descriptors.
    var channelDescriptor: Int32?
    /// Written directly while NIO holds nothing for the socket (LinkSocket.swift).
    var directSocket: LinkSocket?
    /// NIO writes not yet completed on a link with a `directSocket`: while any is, records go
    /// through NIO too, behind it.
    var nioWritesInFlight = 0
    /// Bytes the kernel took from `directSocket` (the rest of `wireBytesOut` went through NIO).
    private(set) var directBytesOut: UInt64 = 0
    private var begun = false
    var closingAfterFlush = false
    /// Waiting for the link to close (`closeWhenFlushed`).
    private var closeWaiters: [EventLoopPromise<Void>] = []

    /// Why the handshake failed, once it has (the HTTP front end names it in its 403).
    private(set) var handshakeFailure: HandshakeFailureReason?
    /// A dialed link: where its connection goes, to classify what ends it early.
    var dialRoute: DialFailureClassifier.Route?
    /// A dialed link that ended before its handshake: why, for its slot's log (LinkSlot).
    var dialFailure: DialFailureCause?
    /// A dialed link: how long its TCP connect took (the RTT to the first hop), for auto
    /// mode's held-writes check (LinkSlot).
    var connectTime: Nanoseconds?

    /// The key this link handshakes with (initiator) or was authenticated by (responder).
    var keyID: KeyID? { machine.keyID }

    init(id: LinkID, node: Node, initiator: LinkInitiator, session: SessionRuntime, slot: LinkSlot) {
        self.id = id
        self.node = node
        self.machine = LinkMachine(initiator: initiator, compressionLevel: Int32(node.config.compressionLevel))
        self.session = session
        self.slot = slot
    }

    init(id: LinkID, node: Node, responder: LinkResponder) {
        self.id = id
        self.node = node
        self.machine = LinkMachine(responder: responder, compressionLevel: Int32(node.config.compressionLevel))
        self.slot = nil
    }

    var logger: Logger {
        var logger = node.logger
        logger[metadataKey: "link"] = "\(id.rawValue)"
        logger[metadataKey: "remote"] = "\(remoteDescription)"
        if let session { logger[metadataKey: "peer"] = "\(session.peer.config.name)" }
        return logger
    }

    var isEstablished: Bool { !closed && machine.isEstablished }
    /// Whether the handshake ever completed (also after the link closed).
    var wasEstablished: Bool { machine.peer != nil }

    func handlerRemoved(context: ChannelHandlerContext) {
        directSocket?.close()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteDescription = Self.describe(context.channel.remoteAddress)
        // Added by an HTTP front end to a live connection: no channelActive will come.
        if context.channel.isActive { begin(context) }
    }

    /// `192.0.2.1:7000` or `[2001:db8::1]:7000`.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "?" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    func channelActive(context: ChannelHandlerContext) {
        begin(context)
        context.fireChannelActive()
    }

    /// Arms the handshake timeout; the initiator sends message 1.
    private func begin(_ context: ChannelHandlerContext) {
        guard !begun else { return }
        begun = true
        // Closed before its connection came up (the slot stopped, the node shut down).
        if closed { return context.close(promise: nil) }
        remoteDescription = Self.describe(context.channel.remoteAddress)
        let timeout = slot == nil ? node.handshakeTimeout : Node.dialHandshakeTimeout
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !isEstablished else { return }
            if dialFailure == nil { dialFailure = .handshakeTimedOut(address: dialRoute?.address.description ?? remoteDescription) }
            fail("handshake not completed within \(timeout)", cause: .timeout)
        }
        var message1 = ByteBuffer()
        do throws(LinkMachine.Failure) {
            try machine.start(into: &message1)
        } catch {
            return fail("\(error)", cause: .internal)
        }
        if message1.readableBytes > 0 { write(message1, flush: true) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        loopBytesIn += UInt64(bytes.readableBytes)
        session?.metrics.counts.bytesReceived += bytes.readableBytes
        machine.receive(&bytes)
        process()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        QuickAck.request(on: context.channel)
        machine.compactInbound(keepingCapacity: Self.keptInboundCapacity)
        // No pump here: a record that leaves the session something to send asks for one
        // (`SessionRuntime.receive`); a record of packets only leaves nothing.
        slot?.checkRecycle(self)
        handOffToDataPlaneIfReady(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session?.schedulePump() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        // The data plane owns the socket now (a duplicate descriptor): this was NIO's closing.
        if plane != nil {
            self.context = nil
            return context.fireChannelInactive()
        }
        if !closed {
            closedByRemote = true
            if isEstablished {
                logger.info("link down: connection closed by the remote end")
                noteLoss("connection closed by the remote end")
            } else if machine.connectionClosed() != nil, machine.isInitiator {
                // How a dialer sees its key refused: the responder closes without a word (PROTOCOL.md §3).
                // The slot's DialFailureLog says so at info, once per cause; this line is per attempt.
                logger.debug("link closed: the remote end closed the connection during the handshake (a key it does not have?)")
                if dialFailure == nil { dialFailure = .closedDuringHandshake }
                node.handshakeFailed(.closed)
            } else {
                logger.debug("link closed during handshake")
            }
        }
        closed = true
        machine.close()
        directSocket?.close()
        session?.detach(self)
        slot?.linkClosed(self)
        linkClosedForWaiters()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if slot != nil, !wasEstablished, dialFailure == nil, let dialRoute {
            dialFailure = DialFailureClassifier.cause(of: error, route: dialRoute)
        }
        var level = Logger.Level.warning
        if let error = error as? IOError, [ECONNRESET, EPIPE, ECONNABORTED].contains(error.errnoCode) {
            closedByRemote = true
            // A peer that announced its shutdown may reset links it closes with bytes unread.
            if peerAnnouncedShutdown { level = .info }
        }
        fail("socket error: \(error)", level: level)
    }

    /// For `byst status`: an established link went down for `cause`. A retired link's close
    /// (recycling: each side closes it once both `retire` frames crossed) is none.
    func noteLoss(_ cause: String) {
        guard !closingAfterFlush, let session, !session.inspect({ $0.isRetired(id) }) else { return }
        let why = peerAnnouncedShutdown ? "the peer shut down: \(cause)" : cause
        session.peer.linkLost(index: linkIndex, transport: transport, cause: why)
    }

    /// The peer closes this link and said why: close it now rather than when its close arrives.
    func peerClosing(_ reason: LinkCloseReason) {
        guard !closed else { return }
        peerCloseReason = reason
        closedByRemote = true
        let hint = reason == .deadLink ? ": our writes on it stopped getting through (something on the path holds them)" : ""
        fail("the peer closed it: \(reason)\(hint)")
    }

    /// The remote end will send nothing more (a FIN: link sockets allow half-closure, and a
    /// proxy may pass its client's close on as one). No record can arrive any more, so the link
    /// is over now rather than at the dead-link timeout; channelInactive logs and detaches it.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            return context.fireUserInboundEventTriggered(event)
        }
        context.close(promise: nil)
    }

    /// Closes the link with one log line (peer-caused problems affect this link only); before
    /// the handshake completed, `cause` is counted as a handshake failure. `deliberate`: our
    /// own decision (a reload, HA), not a loss for `byst status`.
    func fail(_ reason: String, level: Logger.Level = .warning, cause: HandshakeFailureReason = .transport,
              deliberate: Bool = false) {
        if closed { return }
        if slot == nil, !wasEstablished {
            // Accepted and not authenticated: anyone can cause this line, so it is rate-limited.
            node.logLimiter.log(.handshake, level: level, "link closed: \(reason)", to: logger)
        } else if !wasEstablished {
            // Dialed: the slot's DialFailureLog logs the cause once per change; each attempt only here.
            if dialFailure == nil { dialFailure = .other(reason) }
            logger.debug("link closed: \(reason)")
        } else {
            logger.log(level: level, "link closed: \(reason)")
            if !deliberate { noteLoss(reason) }
        }
        if !wasEstablished {
            if handshakeFailure == nil { handshakeFailure = cause }
            node.handshakeFailed(cause)
        }
        close()
    }

    func close() {
        if closed { return }
        closed = true
        machine.close()
        closeChannelOrPlane()
    }

    private func closeChannelOrPlane() {
        if let plane { return plane.owner.isRunning ? plane.owner.post(.close(key: plane.key, afterFlush: false)) : planeClosed(reason: nil) }
        context?.close(promise: nil)
    }

    /// Starts retiring this link: its replacement is up (PROTOCOL.md §5.6).
    func retire() {
        guard isEstablished, let session else { return close() }
        logger.info("link retiring: replaced by a fresh link")
        session.machine.retireLink(id, now: Clocks.monotonic())
        session.schedulePump()
    }

    /// Shutdown: close once what we wrote (the go-away, resets) has reached the socket; the
    /// future completes when the link is closed.
    func closeWhenFlushed() -> EventLoopFuture<Void> {
        let promise = node.eventLoop.makePromise(of: Void.self)
        guard !closed else {
            promise.succeed()
            return promise.futureResult
        }
        closeWaiters.append(promise)
        if isEstablished, plane != nil || context != nil {
            closeRetired()
        } else {
            close()
            // A link without a channel or plane yet has nothing that would report its close.
            if plane == nil, context == nil { linkClosedForWaiters() }
        }
        return promise.futureResult
    }

    /// Completes what waits for the link to close (`closeWhenFlushed`).
    func linkClosedForWaiters() {
        let waiters = closeWaiters
        closeWaiters.removeAll()
        for waiter in waiters { waiter.succeed() }
    }

    /// Both retire frames crossed: close once what we wrote has reached the socket.
    func closeRetired() {
        if !closingAfterFlush, isEstablished, let plane {
            closingAfterFlush = true
            return plane.owner.post(.close(key: plane.key, afterFlush: true))
        }
        guard !closingAfterFlush, isEstablished, let context else { return }
        closingAfterFlush = true
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { [self] _ in
            logger.debug("retired link closed")
            close()
        }
    }

    /// Runs the machine over what arrived: handshake bytes to write, the link coming up, records.
    private func process() {
        var output = ByteBuffer()
        let now = Clocks.wall()
        do throws(LinkMachine.Failure) {
            while let event = try machine.next(now: now, keys: { [node] in node.key(for: $0) }, replayFilter: &node.replayFilter,
                                               into: &output) {
                if case .established(let peer) = event { linkUp(peer) }
                // Before anything else goes out: message 2, or the initiator's first record.
                if output.readableBytes > 0 {
                    write(output, flush: true)
                    output = ByteBuffer()
                }
                if case .record(let payload) = event { session?.receive(payload, from: self) }
            }
        } catch {
            fail("\(error)", cause: HandshakeFailureReason(error))
        }
        if output.readableBytes > 0 { write(output, flush: true) }
    }

    private func linkUp(_ peer: LinkMachine.Peer) {
        handshakeTimeout?.cancel()
        // While the channel is active its descriptor is open, so the number is still its socket.
        if let channelDescriptor, context?.channel.isActive == true { directSocket = LinkSocket(duplicating: channelDescriptor) }
        // `node` stays ours; an accepted link learns its peer from the key (its session comes next).
        logger.info("link up", metadata: [
            "peer_node": "\(peer.hello.nodeName)", "suite": "\(peer.suite)", "key": "\(peer.keyID)", "index": "\(peer.hello.linkIndex)",
            "transport": "\(transport)",
            "peer": "\(session?.peer.config.name ?? node.peersByKeyID[peer.keyID]?.config.name ?? "?")",
        ])
        if slot == nil {
            if let channel = context?.channel { node.handshakeSettled(channel, authenticated: true) }
            // Nil: refused (and closed) there, with its reason.
            session = node.attachResponderLink(self, hello: peer.hello, keyID: peer.keyID)
        }
        guard let session else { return }
        establishedAt = Clocks.monotonic()
        session.peer.latestHandshake = Clocks.wall()
        // Both ends offered offloaded packets: super-packets may go whole (PROTOCOL.md §5.4).
        session.peerTakesOffloadPackets = peer.features.contains(.gsoPackets)
        session.peerMaxPayload = machine.peerMaxPayload
        // PROTOCOL.md §4.2: within what both offered, what we compress is our setting for this peer.
        machine.setCompression(session.peer.config.compression)
        if let slot {
            session.attach(self)
            slot.linkEstablished(self)
        }
    }

    /// Seals and writes whatever the session has for this link while the socket is writable.
    func pump() {
        if plane != nil { return pumpToPlane() }
        guard let context, let session, isEstablished else { return }
        let maxPayload = machine.peerMaxPayload, oneStream = machine.compressionScope != .off
        var wroteThroughNIO = false
        while context.channel.isWritable, writeGate?.acceptsWrites ?? true {
            // A buffer an earlier batch used, if the socket took all of it (else `clear` copies).
            var out = spareBuffer ?? node.writeBuffers.take()
                ?? context.channel.allocator.buffer(capacity: Self.writeBatch + maxPayload + RecordFormat.overhead)
            spareBuffer = nil
            out.clear()
            while out.readableBytes < Self.writeBatch, let mark = machine.beginRecord(in: &out) {
                var packetFrames = 0
                let payload = session.machine.writePayload(for: id, maxBytes: maxPayload, into: &out, packetFrames: &packetFrames,
                                                           oneStream: oneStream)
                if payload == 0 {
                    machine.abandonRecord(mark, in: &out)
                    break
                }
                do throws(LinkMachine.Failure) {
                    try machine.finishRecord(mark, carriesPackets: packetFrames > 0, in: &out)
                } catch {
                    return fail("\(error)")
                }
            }
            guard out.readableBytes > 0 else {
                if out.capacity > Self.spareCapacity { node.writeBuffers.giveBack(out) } else { spareBuffer = out }
                break
            }
            // A batch that is not full ran out of things to send: no need to look again.
            let full = out.readableBytes >= Self.writeBatch
            if write(out, flush: false) { wroteThroughNIO = true }
            keepSpare(out)
            if !full { break }
        }
        if wroteThroughNIO { context.flush() }
        node.writeBuffers.flushed()
    }

    private func keepSpare(_ buffer: ByteBuffer) {
        if buffer.capacity <= Self.spareCapacity { return spareBuffer = buffer }
        node.writeBuffers.giveBack(buffer)
        // Light traffic on a full-size buffer: go small from the next batch on.
        if buffer.readableBytes <= Self.spareCapacity / 4, let context {
            spareBuffer = context.channel.allocator.buffer(capacity: Self.spareCapacity)
        }
    }

    /// Writes `buffer` straight to the socket where the kernel takes it now, the rest through
    /// NIO; returns whether NIO got any of it (then it needs a flush, if `flush` is false).
    @discardableResult
    private func write(_ buffer: ByteBuffer, flush: Bool) -> Bool {
        guard let context else { return false }
        loopBytesOut += UInt64(buffer.readableBytes)
        session?.metrics.counts.bytesSent += buffer.readableBytes
        guard let directSocket else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            if flush { context.flush() }
            return true
        }
        var rest = buffer
        if nioWritesInFlight == 0 {
            let sent = rest.withUnsafeReadableBytes { directSocket.sendNow($0) }
            directBytesOut += UInt64(sent)
            rest.moveReaderIndex(forwardBy: sent)
            if rest.readableBytes == 0 { return false }
        }
        // The socket is full or failed: NIO waits for room (or reports the error), and later
        // records queue behind these bytes until it has written them.
        nioWritesInFlight += 1
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { [self] _ in nioWritesInFlight -= 1 }
        context.write(wrapOutboundOut(rest), promise: written)
        if flush { context.flush() }
        return true
    }
}
