import BYSTProto
import NIOCore

/// The branch's side of the WebSocket opening handshake (PROTOCOL.md §6.4), below the frame
/// codec: its upgrade request (`request`, which HTTPRequestOpener sends), holds back everything the handlers above write (the
/// link's handshake, already framed) until the server's 101 checks out, then passes bytes
/// both ways untouched. A client may send frames only after the 101 (RFC 6455 §4.1).
final class WebSocketClientUpgrade: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let request: HTTPRequestHead
    private let key: String
    private var parser = HTTPHeadParser()
    private var inbound = ByteBuffer()
    private var upgraded = false
    private var failed = false
    private var held = ChunkedOutbound()

    /// `headers` are the route's (Host, User-Agent, proxy credentials); the upgrade's own are added.
    init(target: String, headers: HTTPHeaders, key: String = WebSocketHandshake.makeKey()) {
        var headers = headers
        headers.add("Upgrade", "websocket")
        headers.add("Connection", "Upgrade")
        headers.add("Sec-WebSocket-Key", key)
        headers.add("Sec-WebSocket-Version", WebSocketHandshake.version)
        request = HTTPRequestHead(method: "GET", target: target, headers: headers)
        self.key = key
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !upgraded else { return context.fireChannelRead(data) }
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        let head: HTTPResponseHead?
        do throws(HTTPError) { head = try parser.parseResponse(&inbound) } catch {
            return fail(.malformed(error), context)
        }
        guard let head else { return }
        if let refusal = WebSocketHandshake.refusal(of: head, key: key) { return fail(refusal, context) }
        upgraded = true
        context.fireUserInboundEventTriggered(WebSocketLinkStream.Upgraded())
        // What the link wrote meanwhile goes out now, in order.
        ChunkedOutbound.send(held.take(chunked: false, allocator: context.channel.allocator), context: context)
        if inbound.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(inbound)) }
        inbound = ByteBuffer()
    }

    private func fail(_ error: HTTPTransportError, _ context: ChannelHandlerContext) {
        failed = true
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        held.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !upgraded else { return context.write(data, promise: promise) }
        held.add(unwrapOutboundIn(data), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        guard !upgraded else { return context.flush() }
    }
}
