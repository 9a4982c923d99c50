import BYSTProto
import NIOCore

/// Sends the request head of an HTTP-carried link (duplex or split POST/GET, WebSocket
/// upgrade) for the framing handler above it, and, through a forward proxy, answers the
/// proxy's 407s (ProxyAuthSession) before the response reaches that handler:
///
///   head (with whatever the proxy asked for before) ─▶ response head not 407 ─▶ up, then out of the way
///                                                 └▶ 407: its body read, the head again with the answer
///
/// A POST whose body streams (duplex) goes first without its body (`Content-Length: 0`)
/// while the proxy may still challenge it; its handlers above see `channelActive` only once
/// the real request is written. NTLM starts every connection that way (its Type 1 always
/// draws a 407). A 407 that cannot be answered fails the connection with the reason.
final class HTTPRequestOpener: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: HTTPRequestHead
    private let auth: ProxyAuthSession?
    private let streamsBody: Bool
    private var exchange = ProxyAuthenticator.Exchange()
    private var inbound = ByteBuffer()
    /// Reading a 407's body before answering it.
    private var skipper: HTTPResponseSkipper?
    /// The request written is a bodyless first leg, not the real one.
    private var sentLeg = false
    private var activeAbove = false
    private var finished = false

    init(request: HTTPRequestHead, auth: ProxyAuthSession?, streamsBody: Bool) {
        self.request = request
        self.auth = auth
        self.streamsBody = streamsBody
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let auth else {
            send(request, context)
            return becomeTransparent(context)
        }
        do throws(HTTPTransportError) {
            if streamsBody, auth.wantsBodylessLeg {
                sentLeg = true
                send(try auth.openingLeg(Self.bodyless(request), exchange: &exchange), context)
            } else {
                send(try auth.opening(request, exchange: &exchange), context)
                activate(context)
            }
        } catch { fail(error, context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do throws(HTTPTransportError) { try process(context) } catch { fail(error, context) }
    }

    private func process(_ context: ChannelHandlerContext) throws(HTTPTransportError) {
        while !finished {
            if skipper == nil {
                var peek = inbound
                var parser = HTTPHeadParser()
                let head: HTTPResponseHead?
                do throws(HTTPError) { head = try parser.parseResponse(&peek) } catch { throw .malformed(error) }
                guard let head else { return }
                guard head.status == 407, let auth else {
                    if sentLeg {
                        // The proxy passed a bodyless first leg on: it wants no credentials.
                        auth?.passedWithoutCredentials()
                        throw .proxyPassedLeg(status: head.status, proxy: auth?.proxy.description ?? "")
                    }
                    return becomeTransparent(context)
                }
                if streamsBody, activeAbove {
                    // The body is on its way: this request cannot be sent again. What the proxy
                    // refused was a preemptive answer.
                    throw .proxyAuth(auth.refusedPreemptive(), proxy: auth.proxy.description)
                }
                skipper = HTTPResponseSkipper(requestMethod: sentLeg ? "POST" : request.method)
            }
            guard var reading = skipper else { return }
            let head: HTTPResponseHead?
            do throws(HTTPError) { head = try reading.feed(&inbound) } catch { throw .malformed(error) }
            skipper = reading
            guard let head, let auth else { return }
            skipper = nil
            let real = try auth.answer(head, to: request, exchange: &exchange)
            guard HTTPResponseSkipper.keepsAlive(head) else {
                throw .proxyAuth(.connectionClosed(scheme: exchange.isNTLM ? "NTLM" : "authentication"), proxy: auth.proxy.description)
            }
            if exchange.awaitingNTLMChallenge {
                // Our answer is NTLM's Type 1: a leg, bodyless if the request streams a body.
                sentLeg = streamsBody
                send(streamsBody ? Self.bodyless(real) : real, context)
                if !streamsBody { activate(context) }
            } else {
                sentLeg = false
                send(real, context)
                activate(context)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished, let auth, skipper != nil || sentLeg || exchange.wasChallenged {
            finished = true
            context.fireErrorCaught(HTTPTransportError.proxyAuth(.connectionClosed(scheme: exchange.isNTLM ? "NTLM" : "authentication"),
                                                                 proxy: auth.proxy.description))
        }
        context.fireChannelInactive()
    }

    private func send(_ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 512)
        head.write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard !activeAbove else { return }
        activeAbove = true
        context.fireChannelActive()
    }

    /// The response is the real one: hand it (and everything after it) to the handler above.
    private func becomeTransparent(_ context: ChannelHandlerContext) {
        activate(context)
        finished = true
        if inbound.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(inbound)) }
        inbound = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func fail(_ error: HTTPTransportError, _ context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// The request without a body, for a leg the proxy is to answer with a 407.
    static func bodyless(_ request: HTTPRequestHead) -> HTTPRequestHead {
        var headers = request.headers
        headers.remove("Transfer-Encoding")
        headers.remove("Content-Length")
        headers.add("Content-Length", "0")
        return HTTPRequestHead(method: request.method, target: request.target, headers: headers)
    }
}
