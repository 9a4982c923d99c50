// GET /metrics on the `metrics_listen` addresses (Prometheus text format 0.0.4):
//
//   socket bytes ─▶ HTTPHeadParser (BYSTProto) ─▶ GET or HEAD /metrics ─▶ 200, the exposition
//                                              ├▶ another path ─▶ 404; another method ─▶ 405
//                                              └▶ a bad or oversized head ─▶ 400 / 431 / 505
//   every answer carries `Connection: close` and the connection closes after it: a scrape
//   every few seconds does not need keep-alive, and one request per connection keeps this
//   handler free of request pipelining. The close lingers: FIN first, the rest once the
//   client closes too (or after `lingerTimeout`), so a client still sending reads the answer.
import BYSTProto
import NIOCore
import NIOPosix

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let path = "/metrics"
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// A scraper sends its request at once; a connection without a whole head after this is
    /// closed, so idle or trickling clients cannot hold sockets (slowloris).
    static let headTimeout: TimeAmount = .seconds(10)
    /// How long input is still read (and dropped) after the answer, as HTTPServerFrontEnd does.
    static let lingerTimeout: TimeAmount = .seconds(2)

    private let node: Node
    /// Default limits: a 16 KiB head, 64 fields; a scrape request is a few hundred bytes.
    private var parser = HTTPHeadParser()
    private var inbound = ByteBuffer()
    private var answered = false
    private var deadline: Scheduled<Void>?

    init(node: Node) {
        self.node = node
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: Self.headTimeout) { [self] in
            answered = true
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }  // input after the request is ignored until we close
        var bytes = unwrapInboundIn(data)
        if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        let head: HTTPRequestHead?
        do throws(HTTPError) { head = try parser.parseRequest(&inbound) } catch {
            return answer(error.status, error.reasonPhrase, body: "\(error)\n", headOnly: false, context)
        }
        guard let head else { return }
        let headOnly = head.method == "HEAD"
        guard head.method == "GET" || headOnly else {
            return answer(405, "Method Not Allowed", body: "only GET\n", headOnly: false, extraHeaders: [("Allow", "GET, HEAD")], context)
        }
        let path = (try? HTTPRequestTarget(parsing: head.target))?.path
        guard path == Self.path else {
            return answer(404, "Not Found", body: "metrics are at \(Self.path)\n", headOnly: headOnly, context)
        }
        // The gauges are read on the loop, a slice of peers per tick; the text (megabytes for a
        // hub with thousands of peers) is made on a pool thread, so links are not kept waiting.
        node.watchLoop()
        node.refreshMetrics { [self] registry in
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { MetricsExposition.render(registry) }
                .assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let text): answer(200, "OK", body: text, contentType: Self.contentType, headOnly: headOnly, context)
                    case .failure: answer(503, "Service Unavailable", body: "the node is stopping\n", headOnly: headOnly, context)
                    }
                }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side: before a whole request nothing more will come; after
        // our answer it has read it.
        if let event = event as? ChannelEvent, event == .inputClosed {
            answered = true
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answered = true
        context.close(promise: nil)
    }

    private func answer(_ status: Int, _ reason: String, body: String, contentType: String = "text/plain; charset=utf-8",
                        headOnly: Bool, extraHeaders: [(String, String)] = [], _ context: ChannelHandlerContext) {
        answered = true
        deadline?.cancel()
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.utf8.count)"),
                                   ("Connection", "close")])
        for (name, value) in extraHeaders { headers.add(name, value) }
        var buffer = context.channel.allocator.buffer(capacity: 256 + (headOnly ? 0 : body.utf8.count))
        HTTPResponseHead(status: status, reason: reason, headers: headers).write(into: &buffer)
        if !headOnly { buffer.writeString(body) }
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTimeout) { context.close(promise: nil) }
        }
    }
}
