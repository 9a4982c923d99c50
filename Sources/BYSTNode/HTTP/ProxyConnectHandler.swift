import BYSTProto
import NIOCore

/// Opens a `CONNECT` tunnel through a forward proxy before anything else speaks: holds back
/// `channelActive` from the handlers above until the proxy answers 2xx, then gets out of the
/// way (PROTOCOL.md §6.5).
final class ProxyConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: HTTPRequestHead
    private var parser = HTTPHeadParser()
    private var inbound = ByteBuffer()
    private var done = false
    private var timeout: Scheduled<Void>?
    static let answerTimeout: TimeAmount = .seconds(10)

    init(request: HTTPRequestHead) {
        self.request = request
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        request.write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: Self.answerTimeout) { [self] in
            guard !done else { return }
            fail(HTTPTransportError.proxyRefused(0, "no answer to CONNECT within \(Self.answerTimeout)"), context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        let head: HTTPResponseHead?
        do throws(HTTPError) { head = try parser.parseResponse(&inbound) } catch {
            return fail(HTTPTransportError.malformed(error), context)
        }
        guard let head else { return }
        guard (200..<300).contains(head.status) else {
            return fail(HTTPTransportError.proxyRefused(head.status, head.reason), context)
        }
        done = true
        timeout?.cancel()
        context.fireChannelActive()
        if inbound.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(inbound)) }
        inbound = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func fail(_ error: Error, _ context: ChannelHandlerContext) {
        done = true
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
