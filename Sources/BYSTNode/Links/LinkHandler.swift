// One link: a TCP connection carrying a BYST handshake, then records (PROTOCOL.md §3, §4).
//
//   socket bytes ─▶ inbound ─▶ handshake machine ─▶ record opener ─▶ SessionRuntime.receive
//   SessionRuntime.pump ─▶ pump() ─▶ beginRecord ▸ session frames ▸ finishRecord ─▶ one write
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
    private var phase: Phase
    private var inbound = ByteBuffer()
    private var context: ChannelHandlerContext?
    private(set) var session: SessionRuntime?
    /// The dialing slot that owns this link (initiator side), told when it closes.
    let slot: LinkSlot?
    private var handshakeTimeout: Scheduled<Void>?
    /// The record layer once established; kept apart from `phase` so sending and receiving
    /// never work on stale copies of each other's nonce counters.
    private var sealer: RecordSealer?
    private var opener: RecordOpener?
    private(set) var remoteDescription = "?"
    private(set) var wireBytesIn: UInt64 = 0
    private(set) var wireBytesOut: UInt64 = 0
    private(set) var linkIndex: UInt16 = 0
    /// Largest record payload the peer accepts.
    private var peerMaxPayload = RecordLimits.defaultMaxPayload
    /// Records are batched into writes of about this size.
    private static let writeBatch = 256 * 1024
    /// Backpressure from elsewhere than this socket (split mode's POST queue).
    var writeGate: LinkWriteGate?
    private var begun = false
    private var closingAfterFlush = false

    init(id: LinkID, node: Node, initiator: LinkInitiator, session: SessionRuntime, slot: LinkSlot, linkIndex: UInt16) {
        self.id = id
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
        remoteDescription = Self.describe(context.channel.remoteAddress)
        let timeout = node.handshakeTimeout
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !isEstablished else { return }
            fail("handshake not completed within \(timeout)")
        }
        if case .initiating(var initiator) = phase {
            var out = context.channel.allocator.buffer(capacity: 256)
            do throws(HandshakeError) {
                try initiator.start(into: &out)
            } catch {
                return fail("handshake: \(error)")
            }
            phase = .initiating(initiator)
            write(out, flush: true)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        wireBytesIn += UInt64(bytes.readableBytes)
        if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        process()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if inbound.readableBytes == 0 { inbound = ByteBuffer() } else if inbound.readerIndex > 1 << 20 { inbound.discardReadBytes() }
        session?.schedulePump()
        slot?.checkRecycle(self)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session?.schedulePump() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        switch phase {
        case .initiating, .responding, .awaitingFirstRecord: logger.debug("link closed during handshake")
        case .established, .closed: break
        }
        phase = .closed
        session?.detach(self)
        slot?.linkClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("socket error: \(error)")
    }

    /// Closes the link with one log line (peer-caused problems affect this link only).
    func fail(_ reason: String, level: Logger.Level = .warning) {
        if case .closed = phase { return }
        logger.log(level: level, "link closed: \(reason)")
        if case .established = phase {} else { node.handshakeFailures += 1 }
        phase = .closed
        context?.close(promise: nil)
    }

    func close() {
        if case .closed = phase { return }
        phase = .closed
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
            fail("handshake failed: \(error)")
        } catch let error as RecordError {
            fail("record layer: \(error)")
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
                becomeEstablished(established)
                guard let session = node.attachResponderLink(self, hello: established.peerHello, keyID: established.keyID) else {
                    return fail("no session for key \(established.keyID)")
                }
                self.session = session
                session.receive(record.payload, from: self)
            case .established:
                while case .established = phase, var opener, let record = try opener.open(&inbound) {
                    self.opener = opener
                    session?.receive(record.payload, from: self)
                }
                return
            case .closed:
                return
            }
        }
    }

    private func becomeEstablished(_ established: LinkEstablished) {
        peerMaxPayload = Int(established.peerHello.maxRecordPayload)
        sealer = established.sealer
        opener = established.opener
        phase = .established
        wasEstablished = true
        logger.info("link up", metadata: [
            "node": "\(established.peerHello.nodeName)", "suite": "\(established.suite)",
            "key": "\(established.keyID)", "index": "\(established.peerHello.linkIndex)",
        ])
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
        write(out, flush: true)
    }

    /// Seals and writes whatever the session has for this link while the socket is writable.
    func pump() {
        guard let context, let session, case .established = phase, var sealer else { return }
        defer { self.sealer = sealer }
        var wrote = false
        while context.channel.isWritable, writeGate?.acceptsWrites ?? true {
            var out = context.channel.allocator.buffer(capacity: Self.writeBatch + peerMaxPayload + RecordFormat.overhead)
            while out.readableBytes < Self.writeBatch {
                let mark = sealer.beginRecord(in: &out)
                let payload = session.machine.writePayload(for: id, maxBytes: peerMaxPayload, into: &out)
                if payload == 0 {
                    sealer.abandonRecord(mark, in: &out)
                    break
                }
                do {
                    try sealer.finishRecord(mark, in: &out)
                } catch {
                    return fail("sealing: \(error)")
                }
            }
            guard out.readableBytes > 0 else { break }
            write(out, flush: false)
            wrote = true
        }
        if wrote { context.flush() }
    }

    private func write(_ buffer: ByteBuffer, flush: Bool) {
        guard let context else { return }
        wireBytesOut += UInt64(buffer.readableBytes)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }
}
