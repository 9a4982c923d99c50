import BYSTProto
import NIOCore

/// Reads the responses to split-mode POSTs on one upstream connection. A response that is
/// not HTTP fails the link; a connection that closes or fails (a reset) is only lost: the
/// POST it carried, if unanswered, is sent again (SplitUpstream).
final class SplitPostResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private weak var upstream: SplitUpstream?
    private var parser = HTTPHeadParser()
    private var head: HTTPResponseHead?
    private var decoder: HTTPBodyDecoder?
    private var inbound = ByteBuffer()

    init(upstream: SplitUpstream) {
        self.upstream = upstream
    }

    /// The answers come through the same relays as the link's other bytes: acknowledge them
    /// at once (QuickAck.swift).
    func channelReadComplete(context: ChannelHandlerContext) {
        QuickAck.request(on: context.channel)
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do throws(HTTPError) {
            while true {
                if head == nil {
                    guard let parsed = try parser.parseResponse(&inbound) else { break }
                    // 100 Continue and other interim answers precede the real one.
                    if (100..<200).contains(parsed.status) { continue }
                    head = parsed
                    decoder = HTTPBodyDecoder(framing: try HTTPBodyFraming.response(parsed, requestMethod: "POST"))
                }
                guard var body = decoder, let current = head else { break }
                var ended = false
                while let part = try body.next(&inbound) {
                    if case .end = part {
                        ended = true
                        break
                    }
                }
                decoder = body
                guard ended else { break }
                head = nil
                decoder = nil
                parser = HTTPHeadParser()
                upstream?.responded(current, keepAlive: HTTPResponseSkipper.keepsAlive(current), on: context.channel)
            }
        } catch {
            upstream?.connectionFailed(context.channel, "malformed response: \(error)")
            context.close(promise: nil)
        }
        inbound.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if var body = decoder, let current = head, (try? body.endOfInput()) != nil {
            // A close-delimited response ends here.
            upstream?.responded(current, keepAlive: false, on: context.channel)
        }
        upstream?.connectionLost(context.channel, "connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        upstream?.connectionLost(context.channel, "\(error)")
        context.close(promise: nil)
    }
}
