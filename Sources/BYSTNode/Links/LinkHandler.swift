// One link: a TCP connection carrying a BYST handshake, then records (PROTOCOL.md §3, §4).
//
//   socket bytes ─▶ inbound ─▶ handshake machine ─▶ record opener ─▶ [unzstd] ─▶ SessionRuntime.receive
//   SessionRuntime.pump ─▶ pump() ─▶ beginRecord ▸ session frames ▸ [zstd] ▸ finishRecord ─▶ one write
//
// No protocol decisions here: the machines decide, this handler moves bytes and timers.
import BYSTProto
import Logging
import NIOCore

final class LinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        /// Dialed: message 1 sent, waiting for message 2.
        case initiating(LinkInitiator)
        /// Accepted: waiting for message 1.
        case responding(LinkResponder)
        /// Responder: message 2 sent; the link counts only once the first record opens.
        case awaitingFirstRecord(LinkEstablished)
        /// Records flow (`sealer`, `opener`); the link belongs to `session`.
        case established
        case closed
    }

    let id: LinkID
    let node: Node
    // Not private: phase, inbound, sealer, opener, peerMaxPayload, compressor, directSocket,
    // nioWritesInFlight and closingAfterFlush are also used by LinkHandler+DataPlane.swift.
    var phase: Phase
    var inbound = ByteBuffer()
    private static let keptInboundCapacity = 256 * 1024
    private var context: ChannelHandlerContext?
    private(set) var session: SessionRuntime?
    /// The dialing slot that owns this link (initiator side), told when it closes.
    let slot: LinkSlot?
    private var handshakeTimeout: Scheduled<Void>?
    /// The record layer once established; kept apart from `phase` so sending and receiving
    /// never work on stale copies of each other's nonce counters.
    var sealer: RecordSealer?
    var opener: RecordOpener?
    private(set) var remoteDescription = "?"
    /// Wire bytes through this handler's channel, and through the data plane once it owns the link.
    var wireBytesIn: UInt64 { loopBytesIn + (plane?.shared.bytesIn.load(ordering: .relaxed) ?? 0) }
    var wireBytesOut: UInt64 { loopBytesOut + (plane?.shared.bytesOut.load(ordering: .relaxed) ?? 0) }
    private var loopBytesIn: UInt64 = 0
    private var loopBytesOut: UInt64 = 0
    /// Set once the data plane owns the socket and the record layer (LinkHandler+DataPlane.swift).
    var plane: PlaneLinkState?
    /// Records sealed on this link so far (its send nonce), for `byst_peer_sent_records_total`;
    /// kept apart from `sealer` so reading it copies no sealer.
    private(set) var recordsSealed: UInt64 = 0
    private(set) var linkIndex: UInt16 = 0
    /// Largest record payload the peer accepts.
    var peerMaxPayload = RecordLimits.defaultMaxPayload
    /// zstd state and counters of this link (PROTOCOL.md §4.2); disabled until the peer is known.
    var compressor = RecordCompressor.disabled
    var compressionCounters: RecordCompressor.Counters { compressor.counters }
    /// What we compress on this link: the negotiated feature AND our setting for the peer.
    var compressionScope: CompressionScope { compressor.scope }
    /// Records are batched into writes of about this size.
    private static let writeBatch = 256 * 1024
    /// A small batch buffer, reused: once the socket has taken a batch nothing else holds
    /// it, so light traffic (a ping, an ACK) allocates nothing per record. Bulk batches get
    /// a fresh full-size buffer each; at most `spareCapacity` bytes stay with an idle link.
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

    /// The key this link handshakes with (initiator) or was authenticated by (responder).
    private(set) var keyID: KeyID?

    init(id: LinkID, node: Node, initiator: LinkInitiator, session: SessionRuntime, slot: LinkSlot, linkIndex: UInt16,
         keyID: KeyID) {
        self.id = id
        self.keyID = keyID
        self.node = node
        self.phase = .initiating(initiator)
        self.session = session
        self.slot = slot
        self.linkIndex = linkIndex
    }

    init(id: LinkID, node: Node, responder: LinkResponder) {
        self.id = id
        self.node = node
        self.phase = .responding(responder)
        self.slot = nil
    }

    var logger: Logger {
        var logger = node.logger
        logger[metadataKey: "link"] = "\(id.rawValue)"
        logger[metadataKey: "remote"] = "\(remoteDescription)"
        if let session { logger[metadataKey: "peer"] = "\(session.peer.config.name)" }
        return logger
    }

    var isEstablished: Bool { if case .established = phase { true } else { false } }
    /// Whether the handshake ever completed (also after the link closed).
    private(set) var wasEstablished = false

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
        if case .closed = phase { return context.close(promise: nil) }
        remoteDescription = Self.describe(context.channel.remoteAddress)
        let timeout = slot == nil ? node.handshakeTimeout : Node.dialHandshakeTimeout
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !isEstablished else { return }
            fail("handshake not completed within \(timeout)", cause: .timeout)
        }
        if case .initiating(var initiator) = phase {
            var out = context.channel.allocator.buffer(capacity: 256)
            do throws(HandshakeError) {
                try initiator.start(into: &out)
            } catch {
                return fail("handshake: \(error)", cause: .internal)
            }
            phase = .initiating(initiator)
            write(out, flush: true)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        loopBytesIn += UInt64(bytes.readableBytes)
        session?.metrics.counts.bytesReceived += bytes.readableBytes
        // Copied into our own buffer: records are decrypted in place, and NIO keeps its read
        // buffers for reuse, so decrypting in NIO's would copy the whole buffer each time.
        if inbound.readableBytes == 0 { inbound.clear() }
        inbound.writeBuffer(&bytes)
        process()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if inbound.readableBytes == 0 {
            // Kept for the next read unless a large record made it big.
            if inbound.capacity > Self.keptInboundCapacity { inbound = ByteBuffer() } else { inbound.clear() }
        } else if inbound.readerIndex > 1 << 20 {
            inbound.discardReadBytes()
        }
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
        switch phase {
        case .initiating where begun:
            // How a dialer sees its key refused: the responder closes without a word (PROTOCOL.md §3).
            logger.warning("link closed: the remote end closed the connection during the handshake (a key it does not have?)")
            node.handshakeFailed(.closed)
        case .initiating, .responding, .awaitingFirstRecord: logger.debug("link closed during handshake")
        case .established: logger.info("link down: connection closed by the remote end")
        case .closed: break
        }
        phase = .closed
        directSocket?.close()
        session?.detach(self)
        slot?.linkClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("socket error: \(error)")
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
    /// the handshake completed, `cause` is counted as a handshake failure.
    func fail(_ reason: String, level: Logger.Level = .warning, cause: HandshakeFailureReason = .transport) {
        if case .closed = phase { return }
        if slot == nil, !wasEstablished {
            // Accepted and not authenticated: anyone can cause this line, so it is rate-limited.
            node.logLimiter.log(.handshake, level: level, "link closed: \(reason)", to: logger)
        } else {
            logger.log(level: level, "link closed: \(reason)")
        }
        if case .established = phase {} else { node.handshakeFailed(cause) }
        phase = .closed
        closeChannelOrPlane()
    }

    func close() {
        if case .closed = phase { return }
        phase = .closed
        closeChannelOrPlane()
    }

    private func closeChannelOrPlane() {
        if let plane { return node.dataPlane?.post(.close(key: plane.key, afterFlush: false)) ?? planeClosed(reason: nil) }
        context?.close(promise: nil)
    }

    /// Starts retiring this link: its replacement is up (PROTOCOL.md §5.6).
    func retire() {
        guard case .established = phase, let session else { return close() }
        logger.info("link retiring: replaced by a fresh link")
        session.machine.retireLink(id, now: Clocks.monotonic())
        session.schedulePump()
    }

    /// Both retire frames crossed: close once what we wrote has reached the socket.
    func closeRetired() {
        if !closingAfterFlush, case .established = phase, let plane, let dataPlane = node.dataPlane {
            closingAfterFlush = true
            return dataPlane.post(.close(key: plane.key, afterFlush: true))
        }
        guard !closingAfterFlush, case .established = phase, let context else { return }
        closingAfterFlush = true
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { [self] _ in
            logger.debug("retired link closed")
            close()
        }
    }

    private func process() {
        do {
            try processPhases()
        } catch let error as HandshakeError {
            fail("handshake failed: \(error)", cause: HandshakeFailureReason(error))
        } catch let error as RecordError {
            fail("record layer: \(error)", cause: .malformed)
        } catch {
            fail("\(error)")
        }
    }

    private func processPhases() throws {
        while true {
            switch phase {
            case .initiating(var initiator):
                guard let established = try initiator.receive(&inbound) else {
                    phase = .initiating(initiator)
                    return
                }
                handshakeTimeout?.cancel()
                becomeEstablished(established)
                configureCompression(established.features)
                // PROTOCOL.md §3.5: the initiator's first record goes out at once.
                sendEmptyRecord()
                session?.attach(self)
                slot?.linkEstablished(self)
            case .responding(var responder):
                var out = ByteBuffer()
                let established = try responder.receive(
                    &inbound, now: Clocks.wall(), keys: { [node] in node.key(for: $0) }, replayFilter: &node.replayFilter,
                    into: &out)
                guard let established else {
                    phase = .responding(responder)
                    return
                }
                linkIndex = established.peerHello.linkIndex
                peerMaxPayload = Int(established.peerHello.maxRecordPayload)
                phase = .awaitingFirstRecord(established)
                write(out, flush: true)
            case .awaitingFirstRecord(var established):
                guard let record = try established.opener.open(&inbound) else {
                    phase = .awaitingFirstRecord(established)
                    return
                }
                handshakeTimeout?.cancel()
                if let channel = context?.channel { node.handshakeSettled(channel, authenticated: true) }
                becomeEstablished(established)
                // Nil: refused (and closed) there, with its reason.
                guard let session = node.attachResponderLink(self, hello: established.peerHello, keyID: established.keyID) else {
                    return
                }
                self.session = session
                configureCompression(established.features)
                session.receive(try compressor.decompress(record, limit: node.recordLimits.maxPayload), from: self)
            case .established:
                // Moved out and back, not copied: a copy retains what the opener holds, per record.
                guard var opener = opener.take() else { return }
                defer { self.opener = opener }
                while case .established = phase, let record = try opener.open(&inbound) {
                    session?.receive(try compressor.decompress(record, limit: node.recordLimits.maxPayload), from: self)
                }
                return
            case .closed:
                return
            }
        }
    }

    private func becomeEstablished(_ established: LinkEstablished) {
        // While the channel is active its descriptor is open, so the number is still its socket.
        if let channelDescriptor, context?.channel.isActive == true { directSocket = LinkSocket(duplicating: channelDescriptor) }
        peerMaxPayload = Int(established.peerHello.maxRecordPayload)
        sealer = established.sealer
        opener = established.opener
        phase = .established
        wasEstablished = true
        keyID = established.keyID
        // `node` stays ours; an accepted link learns its peer from the key (its session comes next).
        logger.info("link up", metadata: [
            "peer_node": "\(established.peerHello.nodeName)", "suite": "\(established.suite)",
            "key": "\(established.keyID)", "index": "\(established.peerHello.linkIndex)",
            "peer": "\(session?.peer.config.name ?? node.peersByKeyID[established.keyID]?.config.name ?? "?")",
        ])
    }

    /// PROTOCOL.md §4.2: records are compressed only when both hellos offered the feature,
    /// and then only those our setting for this peer allows; compressed records are accepted
    /// whenever it was negotiated (the responder offers it before it knows the peer).
    private func configureCompression(_ features: LinkFeatures) {
        guard let session else { return }
        // Both ends offered offloaded packets: super-packets may go whole (PROTOCOL.md §5.4).
        session.peerTakesOffloadPackets = features.contains(.gsoPackets)
        session.peerMaxPayload = peerMaxPayload
        compressor = RecordCompressor(negotiated: features.contains(.compression), scope: session.peer.config.compression,
                                      level: Int32(node.config.compressionLevel))
    }

    private func sendEmptyRecord() {
        guard case .established = phase, var sealer, let context else { return }
        var out = context.channel.allocator.buffer(capacity: RecordFormat.overhead)
        do {
            try sealer.seal(ByteBuffer(), into: &out)
        } catch {
            return fail("sealing first record: \(error)")
        }
        self.sealer = sealer
        recordsSealed = sealer.recordsSealed
        write(out, flush: true)
    }

    /// Seals and writes whatever the session has for this link while the socket is writable.
    func pump() {
        if plane != nil { return pumpToPlane() }
        // Moved out and back (as the opener in `processPhases`); `recordsSealed` is read between pumps.
        guard let context, let session, case .established = phase, var sealer = sealer.take() else { return }
        defer {
            recordsSealed = sealer.recordsSealed
            self.sealer = sealer
        }
        var wroteThroughNIO = false
        while context.channel.isWritable, writeGate?.acceptsWrites ?? true {
            // The last batch's buffer, if the socket took all of it (else `clear` copies).
            var out = spareBuffer ?? context.channel.allocator.buffer(capacity: Self.writeBatch + peerMaxPayload + RecordFormat.overhead)
            spareBuffer = nil
            out.clear()
            while out.readableBytes < Self.writeBatch {
                let mark = sealer.beginRecord(in: &out)
                var packetFrames = 0
                let payload = session.machine.writePayload(for: id, maxBytes: peerMaxPayload, into: &out,
                                                           packetFrames: &packetFrames, oneStream: compressor.scope != .off)
                if payload == 0 {
                    sealer.abandonRecord(mark, in: &out)
                    break
                }
                // Before encryption, in place (PROTOCOL.md §4.2).
                let flags = compressor.compressPayload(in: &out, from: out.writerIndex - payload, carriesPackets: packetFrames > 0)
                do {
                    try sealer.finishRecord(mark, flags: flags, in: &out)
                } catch {
                    return fail("sealing: \(error)")
                }
            }
            guard out.readableBytes > 0 else {
                keepSpare(out)
                break
            }
            // A batch that is not full ran out of things to send: no need to look again.
            let full = out.readableBytes >= Self.writeBatch
            if write(out, flush: false) { wroteThroughNIO = true }
            keepSpare(out)
            if !full { break }
        }
        if wroteThroughNIO { context.flush() }
    }

    private func keepSpare(_ buffer: ByteBuffer) {
        if buffer.capacity <= Self.spareCapacity {
            spareBuffer = buffer
        } else if buffer.readableBytes <= Self.spareCapacity / 4, let context {
            // Light traffic on a full-size buffer: go small from the next batch on.
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
