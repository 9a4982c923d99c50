// The first handler of every connection on an HTTP(S) listener (PROTOCOL.md §6):
//
//   "BYST" first ─────────────▶ raw link (what arrives through a CONNECT tunnel)
//   POST <path>  (no token) ──▶ duplex link: request body in, chunked 200 body out
//   GET  <path>?t=TOKEN ──────▶ split downstream: the link lives here, its input comes
//                               from the token's POSTs (SplitRegistry)
//   GET  <path>, Upgrade: websocket ─▶ 101, then a WebSocket link: binary messages both ways
//                               (WebSocketLinkStream under NIOWebSocket's frame codec)
//   POST <path>?t=TOKEN&s=N ──▶ one upstream part: body to the paired link, then 200;
//                               the last part again: compared by digest, not delivered,
//                               200 if the same, 409 if not;
//                               the connection may carry the next request. It stays an
//                               unfinished handshake (pending_handshakes, closed at the
//                               handshake deadline) until a link it fed authenticates
//   anything else ────────────▶ an HTTP error response, then close
//
// Parsing is BYSTProto's (HTTPHeadParser, HTTPBodyDecoder); this handler moves bytes and
// bounds time and size: a request head must arrive within the handshake timeout (slowloris)
// and fit in `[limits] http_max_head`. Refusals are logged rate-limited: strangers cause them.
import BYSTProto
import Logging
import NIOCore
import NIOWebSocket

final class HTTPServerFrontEnd: ChannelDuplexHandler, SplitDownstream {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingHead
        /// A link's body: a duplex POST's decoder, or nil for a split GET (no request body).
        case link(HTTPBodyDecoder?)
        case upstreamPart(UpstreamBody)
        case raw
        /// Upgraded (101 sent): bytes pass untouched to and from the frame codec above.
        case webSocket
        case done
    }

    /// A split upstream POST's body being read (PROTOCOL.md §6.3).
    private struct UpstreamBody {
        let token: String
        var decoder: HTTPBodyDecoder
        var hasher: SplitPartHasher
        let keepAlive: Bool
        /// For the last part sent again: what was received; the bytes are compared, not delivered.
        let repeatOf: SplitPartDigest?
    }

    /// How long input is still read (and dropped) after an error answer.
    static let lingerTimeout: TimeAmount = .seconds(2)

    private let node: Node
    /// `[limits] http_idle_timeout`: an idle keep-alive connection (between split POSTs), or a
    /// POST body that stops arriving, is closed after this (as configured when it was accepted).
    private let idleTimeout: TimeAmount
    /// Digests this connection's split POSTs (made at its first).
    private lazy var partDigest = node.splitRegistry.makePartDigest()
    private var state = State.awaitingHead
    private var parser: HTTPHeadParser
    private var inbound = ByteBuffer()
    private var context: ChannelHandlerContext?
    /// The armed deadline task, when it fires, and for which timeout.
    private var deadline: (task: Scheduled<Void>, at: NIODeadline, timeout: TimeAmount)?
    private var splitToken: String?
    /// The link started on this connection (for split mode: the GET's).
    private weak var link: LinkHandler?
    /// This connection in the split registry's bounds (made at its first upstream POST).
    private var splitOrigin: SplitOrigin?
    /// Upstream POSTs: the connection is pending until a link it fed authenticates, and is
    /// closed if none has by the handshake deadline, counted from its accept.
    private var upstreamSettlement = SplitUpstreamSettlement()
    private var acceptedAt = NIODeadline.now()
    private var handshakeDeadline: Scheduled<Void>?
    /// Link response: head sent yet, and whether its body is chunked (HTTP/1.1) or runs to close.
    private var responseStarted = false
    private var chunkedResponse = true
    private var outbound = ChunkedOutbound()

    init(node: Node) {
        self.node = node
        parser = HTTPHeadParser(limits: node.config.limits.httpLimits)
        idleTimeout = .nanoseconds(Int64(clamping: node.config.limits.httpIdleTimeout.nanoseconds))
    }

    /// A request head must be complete within this (the node's handshake timeout).
    private var headTimeout: TimeAmount { node.handshakeTimeout }

    private var remote: String { LinkHandler.describe(context?.channel.remoteAddress) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        acceptedAt = .now()
        armDeadline(headTimeout)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        // An upstream part's body must keep moving (a trickling body would hold the connection).
        if case .upstreamPart = state { deadlineExtendedTo = .now() + idleTimeout }
        process(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A split link's POSTs are read here, not by a LinkHandler (which does this for the
        // other links): acknowledge at once, as on every link socket (also when this read
        // finished a part and the connection waits for the next head).
        switch state {
        case .upstreamPart, .awaitingHead: QuickAck.request(on: context.channel)
        case .link, .raw, .webSocket, .done: break
        }
        // All read: let the read buffer go (NIO reuses it for the next read once nobody holds
        // it; `clear()` would allocate a new one here while the link still holds a slice).
        if inbound.readableBytes == 0 { inbound = ByteBuffer() } else if inbound.readerIndex > 64 * 1024 { inbound.discardReadBytes() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        handshakeDeadline?.cancel()
        if let splitToken { node.splitRegistry.downstreamClosed(splitToken, self) }
        if case .upstreamPart(let part) = state {
            node.logger.debug("split upstream part \(part.hasher.sequence) for \(part.token.prefix(6))… cut short by \(remote)")
        }
        outbound.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    // MARK: Inbound

    private func process(_ context: ChannelHandlerContext) {
        while true {
            switch state {
            case .awaitingHead:
                if inbound.readableBytes > 0, startsLikeRawLink() {
                    guard inbound.readableBytes >= 4 else { return }
                    return becomeRawLink(context)
                }
                let head: HTTPRequestHead?
                do throws(HTTPError) { head = try parser.parseRequest(&inbound) } catch {
                    if error.status == 431 {
                        node.limitHit(.httpHead, "HTTP request head from \(remote) over \(parser.limits.maxHeadBytes) bytes or \(parser.limits.maxHeaders) fields",
                                      level: .info)
                    }
                    return refuse(error.status, error.reasonPhrase, detail: "\(error)")
                }
                guard let head else { return }
                route(head, context)
            case .link(var decoder?):
                var delivered = false
                defer { if delivered { context.fireChannelReadComplete() } }
                do throws(HTTPError) {
                    while let part = try decoder.next(&inbound) {
                        guard case .data(let bytes) = part else {
                            // The client ended its body: nothing more comes up this link, so
                            // it is over (PROTOCOL.md §6.1: a link's body never ends by itself).
                            state = .link(nil)
                            context.close(promise: nil)
                            return
                        }
                        delivered = true
                        context.fireChannelRead(wrapInboundOut(bytes))
                    }
                } catch {
                    guard !responseStarted else {
                        node.logLimiter.log(.http, level: .info, "HTTP link from \(remote): bad request body: \(error)", to: node.logger)
                        state = .done
                        context.close(promise: nil)
                        return
                    }
                    return refuse(error.status, error.reasonPhrase, detail: "bad request body: \(error)")
                }
                state = .link(decoder)
                return
            case .link(nil), .done:
                inbound.clear()
                return
            case .upstreamPart(var part):
                do throws(HTTPError) {
                    while let chunk = try part.decoder.next(&inbound) {
                        guard case .data(let bytes) = chunk else {
                            endUpstreamPart(part, context)
                            break
                        }
                        part.hasher.update(bytes)
                        guard part.repeatOf == nil else { continue }
                        do throws(SplitRegistry.Refusal) { try node.splitRegistry.deliver(part.token, bytes) } catch {
                            return refuse(error)
                        }
                    }
                } catch {
                    return refuse(error.status, error.reasonPhrase, detail: "\(error)")
                }
                if case .upstreamPart = state {
                    state = .upstreamPart(part)
                    return
                }
            case .raw, .webSocket:
                if inbound.readableBytes > 0 {
                    context.fireChannelRead(wrapInboundOut(inbound))
                    inbound = ByteBuffer()
                }
                return
            }
        }
    }

    /// Whether the buffered bytes are (so far) the BYST magic rather than an HTTP method.
    private func startsLikeRawLink() -> Bool {
        let count = min(inbound.readableBytes, 4)
        guard let first = inbound.getBytes(at: inbound.readerIndex, length: count) else { return false }
        return first.elementsEqual(LinkWire.magic.prefix(count))
    }

    private func becomeRawLink(_ context: ChannelHandlerContext) {
        cancelDeadline()
        state = .raw
        guard addLink(binding: [], transport: "raw", context) else { return }
        process(context)
        context.fireChannelReadComplete()
    }

    private func route(_ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        let target: HTTPRequestTarget
        do throws(HTTPError) { target = try HTTPRequestTarget(parsing: head.target) } catch {
            return refuse(400, "Bad Request", detail: "\(error)")
        }
        guard target.path == node.config.http.path else {
            return refuse(404, "Not Found", detail: "\(head.method) \(target.path)")
        }
        let framing: HTTPBodyFraming
        do throws(HTTPError) { framing = try HTTPBodyFraming.request(head) } catch {
            return refuse(error.status, error.reasonPhrase, detail: "\(error)")
        }
        let token = target.value("t")
        if let token, !SplitRegistry.isValidToken(token) { return refuse(400, "Bad Request", detail: "malformed link token") }
        switch (head.method, token) {
        case ("POST", nil):
            guard framing != .none else { return refuse(411, "Length Required", detail: "duplex POST without a body") }
            sendContinueIfExpected(head, context)
            startLink(version: head.version, body: HTTPBodyDecoder(framing: framing), binding: [], transport: "duplex", context)
        case ("POST", let token?):
            guard let sequence = target.value("s").flatMap({ UInt64($0) }) else {
                return refuse(400, "Bad Request", detail: "split upstream part without a sequence number")
            }
            let origin = splitOrigin ?? node.splitRegistry.newOrigin(source: HandshakeSource(context.channel.remoteAddress))
            splitOrigin = origin
            let kind: SplitRegistry.PartKind
            do throws(SplitRegistry.Refusal) { kind = try node.splitRegistry.beginUpstream(token, sequence: sequence, from: origin) } catch {
                return refuse(error)
            }
            upstreamFed(token, context)
            sendContinueIfExpected(head, context)
            armDeadline(idleTimeout)
            let keepAlive = head.version == .http11 && !head.headers.containsToken("close", in: "connection")
            let repeatOf: SplitPartDigest?
            switch kind {
            case .next: repeatOf = nil
            case .repeated(let received): repeatOf = received
            }
            state = .upstreamPart(UpstreamBody(token: token, decoder: HTTPBodyDecoder(framing: framing),
                                               hasher: SplitPartHasher(sequence: sequence, digest: partDigest),
                                               keepAlive: keepAlive, repeatOf: repeatOf))
        case ("GET", let token?):
            let pending: ByteBuffer?
            do throws(SplitRegistry.Refusal) { pending = try node.splitRegistry.attachDownstream(token, self) } catch {
                return refuse(error)
            }
            splitToken = token
            startLink(version: head.version, body: nil, binding: Array(token.utf8), transport: "split", context)
            if let pending {
                deliverUpstream(pending)
                upstreamBatchDone()
            }
        case ("GET", nil) where head.headers.containsToken("websocket", in: "upgrade"):
            startWebSocket(head, hasBody: framing != .none, context)
        case ("GET", nil):
            refuse(400, "Bad Request", detail: "GET without a link token")
        default:
            refuse(405, "Method Not Allowed", detail: "method \(head.method)", extraHeaders: [("Allow", "GET, POST")])
        }
    }

    private func sendContinueIfExpected(_ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        guard head.version == .http11, head.headers.containsToken("100-continue", in: "expect") else { return }
        var buffer = context.channel.allocator.buffer(capacity: 32)
        HTTPResponseHead(status: 100, reason: "Continue").write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func startLink(version: HTTPVersion, body: HTTPBodyDecoder?, binding: [UInt8], transport: String,
                           _ context: ChannelHandlerContext) {
        cancelDeadline()
        chunkedResponse = version == .http11
        state = .link(body)
        _ = addLink(binding: binding, transport: transport, context)
    }

    /// Answers a WebSocket upgrade with 101 and puts the frame codec between us and the link
    /// (PROTOCOL.md §6.4). Like a duplex link, nothing binds the handshake to the request.
    private func startWebSocket(_ head: HTTPRequestHead, hasBody: Bool, _ context: ChannelHandlerContext) {
        if let (status, detail) = WebSocketHandshake.refusal(of: head, hasBody: hasBody) {
            let upgradeRequired = status == 426
            return refuse(status, upgradeRequired ? "Upgrade Required" : "Bad Request", detail: detail,
                          extraHeaders: upgradeRequired ? [("Sec-WebSocket-Version", WebSocketHandshake.version)] : [])
        }
        guard let key = head.headers["sec-websocket-key"], let accept = WebSocketHandshake.accept(for: key) else {
            return refuse(500, "Internal Server Error", detail: "cannot compute Sec-WebSocket-Accept")
        }
        cancelDeadline()
        state = .webSocket
        var buffer = context.channel.allocator.buffer(capacity: 160)
        HTTPResponseHead(status: 101, reason: "Switching Protocols",
                         headers: HTTPHeaders([("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]))
            .write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        let framing: [ChannelHandler] = [
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: WebSocketReceiver.maxMessageBytes)),
            WebSocketFrameEncoder(),
            WebSocketLinkStream(role: .server),
        ]
        guard addLink(binding: [], transport: "websocket", below: framing, context) else { return }
        process(context)
        context.fireChannelReadComplete()
    }

    /// Adds the link after this handler, with `framing` (handlers between us and it) first.
    private func addLink(binding: [UInt8], transport: String, below framing: [ChannelHandler] = [],
                         _ context: ChannelHandlerContext) -> Bool {
        // The link's own handshake timeout and settlement take over.
        handshakeDeadline?.cancel()
        let link = node.makeResponderLink(binding: binding)
        link.transport = transport
        self.link = link
        do {
            try context.pipeline.syncOperations.addHandlers(framing + [link], position: .after(self))
            return true
        } catch {
            node.logger.warning("cannot start a link on \(remote): \(error)")
            state = .done
            context.close(promise: nil)
            return false
        }
    }

    /// An upstream part's body ended: a new part is recorded, a repeated one compared.
    private func endUpstreamPart(_ part: UpstreamBody, _ context: ChannelHandlerContext) {
        let digest = part.hasher.finish()
        if let received = part.repeatOf {
            guard let digest, digest == received else { return refuse(SplitRegistry.Refusal.repeatDiffers(received.sequence)) }
            node.logger.debug("split upstream part \(received.sequence) for \(part.token.prefix(6))… sent again by \(remote): same bytes, answered again")
        } else {
            node.splitRegistry.finishUpstream(part.token, sequence: part.hasher.sequence, digest)
        }
        settleUpstreamIfAuthenticated()
        finishUpstreamPart(keepAlive: part.keepAlive, context)
    }

    /// A part's answer: always the same bytes, made once (a split link answers every POST).
    private static func partAnswer(keepAlive: Bool) -> ByteBuffer {
        var headers = HTTPHeaders([("Content-Length", "0"), ("Cache-Control", "no-store")])
        if !keepAlive { headers.add("Connection", "close") }
        var buffer = ByteBuffer()
        HTTPResponseHead(status: 200, reason: "OK", headers: headers).write(into: &buffer)
        return buffer
    }
    private static let partAnswerKeepAlive = partAnswer(keepAlive: true)
    private static let partAnswerClose = partAnswer(keepAlive: false)

    private func finishUpstreamPart(keepAlive: Bool, _ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(keepAlive ? Self.partAnswerKeepAlive : Self.partAnswerClose), promise: nil)
        if keepAlive {
            state = .awaitingHead
            parser = HTTPHeadParser(limits: node.config.limits.httpLimits)
            armDeadline(idleTimeout)
        } else {
            state = .done
            context.close(promise: nil)
        }
    }

    // MARK: Split downstream input (called by SplitRegistry on the same event loop)

    func deliverUpstream(_ bytes: ByteBuffer) {
        guard case .link = state, let context else { return }
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    func upstreamBatchDone() {
        guard case .link = state, let context else { return }
        context.fireChannelReadComplete()
    }

    var linkAuthenticated: Bool { link?.wasEstablished ?? false }

    // MARK: Split upstream connections: settled once a link they fed authenticates

    private func upstreamFed(_ token: String, _ context: ChannelHandlerContext) {
        upstreamSettlement.fed(token)
        guard !upstreamSettlement.isSettled, handshakeDeadline == nil else { return }
        handshakeDeadline = context.eventLoop.assumeIsolated().scheduleTask(deadline: acceptedAt + headTimeout) { [self] in
            upstreamHandshakeDeadlineReached()
        }
    }

    private func settleUpstreamIfAuthenticated() {
        guard upstreamSettlement.settle(authenticated: node.splitRegistry.isAuthenticated), let context else { return }
        handshakeDeadline?.cancel()
        node.handshakeSettled(context.channel)
    }

    private func upstreamHandshakeDeadlineReached() {
        settleUpstreamIfAuthenticated()
        guard !upstreamSettlement.isSettled, let context else { return }
        if case .done = state { return }
        node.handshakeFailed(.timeout)
        node.logLimiter.log(.http, level: .info,
                            "HTTP split upstream connection from \(remote): no link it fed authenticated within \(headTimeout); closing",
                            to: node.logger)
        state = .done
        cancelDeadline()
        context.close(promise: nil)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .link = state else { return context.write(data, promise: promise) }
        outbound.add(unwrapOutboundIn(data), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        guard case .link = state else { return context.flush() }
        if !responseStarted {
            responseStarted = true
            var head = context.channel.allocator.buffer(capacity: 192)
            var headers = HTTPHeaders([("Content-Type", "application/octet-stream"), ("Cache-Control", "no-store"),
                                       ("X-Accel-Buffering", "no")])
            headers.add(chunkedResponse ? "Transfer-Encoding" : "Connection", chunkedResponse ? "chunked" : "close")
            // A split link's client may have this many POSTs unanswered (PROTOCOL.md §6.3).
            if splitToken != nil { headers.add(SplitRegistry.pipelineHeader, "\(SplitRegistry.rememberedParts)") }
            HTTPResponseHead(status: 200, reason: "OK", version: chunkedResponse ? .http11 : .http10, headers: headers)
                .write(into: &head)
            context.write(wrapOutboundOut(head), promise: nil)
        }
        var batch = outbound.take(chunked: chunkedResponse, allocator: context.channel.allocator)
        ChunkedOutbound.send(batch, context: context)
        outbound.recycle(&batch)
    }

    /// A link that closes before answering (bad key, handshake timeout) still gets an HTTP
    /// answer, so proxies and people with curl see an ordinary error.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if case .link = state, !responseStarted, mode == .all {
            responseStarted = true
            state = .done
            // The marker lets the branch tell this from a proxy's own 403 (PROTOCOL.md §6).
            let refusal: BYSTRefusal = link?.handshakeFailure == .unknownKey ? .unknownKey : .handshakeFailed
            writeError(403, "Forbidden", refusal: refusal, body: "link refused\n", extraHeaders: [], context)
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Errors and timers

    private func refuse(_ refusal: SplitRegistry.Refusal) {
        if let limit = refusal.limit {
            node.limitHit(limit, "\(refusal): \(refusal.status.code) to \(remote)", level: .info)
        }
        refuse(refusal.status.code, refusal.status.reason, detail: "\(refusal)")
    }

    private func refuse(_ status: Int, _ reason: String, detail: String, extraHeaders: [(String, String)] = []) {
        guard let context else { return }
        node.logLimiter.log(.http, level: .info, "HTTP \(status) to \(remote): \(detail)", to: node.logger)
        state = .done
        cancelDeadline()
        writeError(status, reason, refusal: BYSTRefusal(status: status), body: "\(status) \(reason): \(detail)\n",
                   extraHeaders: extraHeaders, context)
        // Lingering close: a client still sending (an oversized head) would otherwise get a
        // reset that can destroy our answer before it reads it. Send FIN, discard input a while.
        context.close(mode: .output, promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTimeout) { context.close(promise: nil) }
    }

    /// Every error answer of ours carries `BYST-Refusal` (PROTOCOL.md §6).
    private func writeError(_ status: Int, _ reason: String, refusal: BYSTRefusal, body: String, extraHeaders: [(String, String)],
                            _ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "\(body.utf8.count)"),
                                   ("Connection", "close"), (BYSTRefusal.headerName, refusal.rawValue)])
        for (name, value) in extraHeaders { headers.add(name, value) }
        HTTPResponseHead(status: status, reason: reason, headers: headers).write(into: &buffer)
        buffer.writeString(body)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Progress since the deadline was armed moved it here: when the armed task fires it
    /// re-arms itself for the rest, rather than a timer being made per read.
    private var deadlineExtendedTo: NIODeadline?

    private func armDeadline(_ timeout: TimeAmount) {
        let when = NIODeadline.now() + timeout
        // A keep-alive connection arms the same timeout at every POST and answer: the armed
        // task moves (it re-arms itself if it fires early) rather than a task per arm.
        if let armed = deadline, armed.timeout == timeout, armed.at <= when {
            deadlineExtendedTo = when
            return
        }
        deadlineExtendedTo = nil
        scheduleDeadline(at: when, timeout: timeout)
    }

    private func cancelDeadline() {
        deadline?.task.cancel()
        deadline = nil
    }

    private func scheduleDeadline(at when: NIODeadline, timeout: TimeAmount) {
        deadline?.task.cancel()
        deadline = nil
        guard let loop = context?.eventLoop.assumeIsolated() else { return }
        let task = loop.scheduleTask(deadline: when) { [self] in
            deadline = nil
            if let later = deadlineExtendedTo, later > .now() {
                deadlineExtendedTo = nil
                return scheduleDeadline(at: later, timeout: timeout)
            }
            if case .upstreamPart = state {
                node.logger.info("HTTP split upstream part from \(remote) stalled for \(Duration.nanoseconds(timeout.nanoseconds).configText) (http_idle_timeout); closing")
                state = .done
                context?.close(promise: nil)
                return
            }
            guard case .awaitingHead = state else { return }
            if inbound.readableBytes > 0 {
                refuse(408, "Request Timeout", detail: "request head not complete within \(headTimeout)")
            } else {
                state = .done
                context?.close(promise: nil)
            }
        }
        deadline = (task, when, timeout)
    }
}
