import BYSTProto
import NIOCore

/// Client side of an HTTP-carried link, between the request opener (HTTPRequestOpener, which
/// sends the request head) and the LinkHandler (PROTOCOL.md §6):
///
///   duplex: the link's writes ─▶ one chunk per flush of the POST body
///   split:  the link's writes ─▶ SplitUpstream (POSTs on other connections)
///   both:   response head (must be 200) ▸ body (chunked, sized or to close) ─▶ the link
///
/// Chunk boundaries mean nothing to the link: it gets the body bytes as they come.
final class HTTPClientFraming: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Upstream {
        case chunkedBody
        case split(SplitUpstream)
    }

    private let requestMethod: String
    private let upstream: Upstream
    private var parser = HTTPHeadParser()
    private var decoder: HTTPBodyDecoder?
    private var inbound = ByteBuffer()
    private var outbound = ChunkedOutbound()
    private var failed = false

    init(requestMethod: String, upstream: Upstream) {
        self.requestMethod = requestMethod
        self.upstream = upstream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        do throws(HTTPTransportError) { try process(context) } catch {
            failed = true
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    private func process(_ context: ChannelHandlerContext) throws(HTTPTransportError) {
        if decoder == nil {
            let head: HTTPResponseHead?
            do throws(HTTPError) { head = try parser.parseResponse(&inbound) } catch { throw .malformed(error) }
            guard let head else { return }
            guard head.status == 200 else { throw .status(head.status, head.reason, refusal: head.headers[BYSTRefusal.headerName]) }
            if case .split(let split) = upstream, let value = head.headers[SplitRegistry.pipelineHeader],
               let allowed = HTTPSyntax.decimal(value[...], maximum: Int.max) {
                split.serverAllows(unanswered: allowed)
            }
            do throws(HTTPError) {
                decoder = HTTPBodyDecoder(framing: try HTTPBodyFraming.response(head, requestMethod: requestMethod))
            } catch { throw .malformed(error) }
        }
        guard var body = decoder else { return }
        defer { decoder = body }
        while true {
            let part: HTTPBodyDecoder.Part?
            do throws(HTTPError) { part = try body.next(&inbound) } catch { throw .malformed(error) }
            guard let part else { return }
            guard case .data(let bytes) = part else { throw .bodyEnded }
            context.fireChannelRead(wrapInboundOut(bytes))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // All read: let the read buffer go (NIO reuses it for the next read once nobody holds
        // it; `clear()` would allocate a new one here while the link still holds a slice).
        if inbound.readableBytes == 0 { inbound = ByteBuffer() } else if inbound.readerIndex > 64 * 1024 { inbound.discardReadBytes() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .split(let split) = upstream { split.close() }
        outbound.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch upstream {
        case .chunkedBody: outbound.add(unwrapOutboundIn(data), promise: promise)
        case .split(let split):
            split.enqueue(unwrapOutboundIn(data))
            promise?.succeed()
        }
    }

    func flush(context: ChannelHandlerContext) {
        switch upstream {
        case .chunkedBody:
            var batch = outbound.take(chunked: true, allocator: context.channel.allocator)
            ChunkedOutbound.send(batch, context: context)
            outbound.recycle(&batch)
        case .split(let split): split.flush()
        }
    }
}
