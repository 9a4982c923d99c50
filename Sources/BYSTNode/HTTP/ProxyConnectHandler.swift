import BYSTProto
import NIOCore

/// Opens a `CONNECT` tunnel through a forward proxy before anything else speaks: holds back
/// `channelActive` from the handlers above until the proxy answers 2xx, then gets out of the
/// way (PROTOCOL.md §6.5). A 407 is answered on the same connection (ProxyAuthSession) when
/// the proxy keeps it open.
final class ProxyConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: HTTPRequestHead
    private let auth: ProxyAuthSession?
    private var exchange = ProxyAuthenticator.Exchange()
    private var response = HTTPResponseSkipper(requestMethod: "CONNECT")
    private var inbound = ByteBuffer()
    private var done = false
    private var timeout: Scheduled<Void>?
    static let answerTimeout: TimeAmount = .seconds(10)

    init(request: HTTPRequestHead, auth: ProxyAuthSession?) {
        self.request = request
        self.auth = auth
    }

    func channelActive(context: ChannelHandlerContext) {
        do throws(HTTPTransportError) {
            send(try auth?.opening(request, exchange: &exchange) ?? request, context)
        } catch { return fail(error, context) }
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: Self.answerTimeout) { [self] in
            guard !done else { return }
            fail(HTTPTransportError.proxyRefused(0, "no answer to CONNECT within \(Self.answerTimeout)"), context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if !done, let auth, exchange.wasChallenged {
            done = true
            context.fireErrorCaught(HTTPTransportError.proxyAuth(.connectionClosed(scheme: exchange.isNTLM ? "NTLM" : "authentication"),
                                                                 proxy: auth.proxy.description))
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do throws(HTTPTransportError) { try process(context) } catch { fail(error, context) }
    }

    private func process(_ context: ChannelHandlerContext) throws(HTTPTransportError) {
        while !done {
            let complete: HTTPResponseHead?
            do throws(HTTPError) { complete = try response.feed(&inbound) } catch { throw .malformed(error) }
            guard let head = complete ?? response.head else { return }
            guard head.status == 407, let auth else {
                guard (200..<300).contains(head.status) else { throw .proxyRefused(head.status, head.reason) }
                return opened(context)
            }
            // A 407: answered once its body is read, if the connection stays.
            guard complete != nil else { return }
            let answer = try auth.answer(head, to: request, exchange: &exchange)
            guard HTTPResponseSkipper.keepsAlive(head) else {
                throw .proxyAuth(.connectionClosed(scheme: exchange.isNTLM ? "NTLM" : "authentication"), proxy: auth.proxy.description)
            }
            response = HTTPResponseSkipper(requestMethod: "CONNECT")
            send(answer, context)
        }
    }

    private func opened(_ context: ChannelHandlerContext) {
        done = true
        timeout?.cancel()
        context.fireChannelActive()
        if inbound.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(inbound)) }
        inbound = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func send(_ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        head.write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func fail(_ error: Error, _ context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        timeout?.cancel()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
