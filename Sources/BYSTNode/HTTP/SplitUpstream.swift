// Client side of split mode's upstream (PROTOCOL.md §6.3): the link's outbound bytes leave
// as a sequence of POSTs with Content-Length, one in flight at a time, numbered so the server
// can check their order. A proxy that buffers whole request bodies passes them all the same.
//
//   LinkHandler ─write─▶ HTTPClientFraming ─enqueue/flush─▶ SplitUpstream ─POST s=0,1,2…─▶ server
//   response 2xx ─▶ next POST with everything queued meanwhile (up to maxPostBytes)
import BYSTProto
import NIOCore

/// Lets the LinkHandler see backpressure from somewhere other than its own socket.
protocol LinkWriteGate: AnyObject {
    var acceptsWrites: Bool { get }
}

final class SplitUpstream: LinkWriteGate {
    typealias Connector = (SplitUpstream) -> EventLoopFuture<Channel>

    static let maxPostBytes = 1 << 20
    static let highWater = 2 << 20
    static let lowWater = 512 << 10

    let route: HTTPRoute
    let token: String
    private let connector: Connector
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private var sequence: UInt64 = 0
    private var channel: Channel?
    private var connecting = false
    private var inFlight = false
    private var closed = false
    private(set) var bytesSent: UInt64 = 0
    /// Called once, when a POST fails: the link is over.
    var onFailure: ((String) -> Void)?
    /// Called when the queue drained below `lowWater` after being full.
    var onWritable: (() -> Void)?

    init(route: HTTPRoute, token: String, connector: @escaping Connector) {
        self.route = route
        self.token = token
        self.connector = connector
    }

    var acceptsWrites: Bool { !closed && pendingBytes < Self.highWater }

    func enqueue(_ bytes: ByteBuffer) {
        guard !closed, bytes.readableBytes > 0 else { return }
        pending.append(bytes)
        pendingBytes += bytes.readableBytes
    }

    func flush() { sendIfIdle() }

    func close() {
        closed = true
        pending.removeAll()
        pendingBytes = 0
        channel?.close(promise: nil)
        channel = nil
    }

    private func sendIfIdle() {
        guard !closed, !inFlight, pendingBytes > 0 else { return }
        guard let channel else { return connect() }
        send(on: channel)
    }

    private func connect() {
        guard !connecting else { return }
        connecting = true
        connector(self).assumeIsolated().whenComplete { [self] result in
            connecting = false
            switch result {
            case .success(let channel):
                guard !closed else { return channel.close(promise: nil) }
                self.channel = channel
                sendIfIdle()
            case .failure(let error):
                fail("cannot connect to \(route.connectAddress): \(error)")
            }
        }
    }

    private func send(on channel: Channel) {
        let wasFull = !acceptsWrites
        var body: [ByteBuffer] = []
        var size = 0
        while let first = pending.first, size == 0 || size + first.readableBytes <= Self.maxPostBytes {
            body.append(first)
            size += first.readableBytes
            pending.removeFirst()
        }
        pendingBytes -= size
        var headers = route.requestHeaders()
        headers.add("Content-Type", "application/octet-stream")
        headers.add("Content-Length", "\(size)")
        let head = HTTPRequestHead(method: "POST", target: route.requestTarget(query: "t=\(token)&s=\(sequence)"), headers: headers)
        var headBytes = channel.allocator.buffer(capacity: 512)
        head.write(into: &headBytes)
        channel.write(headBytes, promise: nil)
        for part in body { channel.write(part, promise: nil) }
        channel.flush()
        sequence += 1
        bytesSent += UInt64(headBytes.readableBytes + size)
        inFlight = true
        if wasFull, pendingBytes < Self.lowWater { onWritable?() }
    }

    /// The response to the POST in flight arrived (its body read to the end).
    func responded(status: Int, reason: String, keepAlive: Bool, on channel: Channel) {
        guard channel === self.channel, inFlight else { return }
        inFlight = false
        guard (200..<300).contains(status) else {
            return fail("HTTP \(status) \(reason) for part \(sequence - 1)")
        }
        if !keepAlive {
            channel.close(promise: nil)
            self.channel = nil
        }
        sendIfIdle()
    }

    func connectionClosed(_ channel: Channel) {
        guard channel === self.channel else { return }
        self.channel = nil
        if inFlight { fail("connection closed before part \(sequence - 1) was answered") } else { sendIfIdle() }
    }

    func connectionFailed(_ channel: Channel, _ reason: String) {
        guard channel === self.channel else { return }
        fail(reason)
    }

    private func fail(_ reason: String) {
        guard !closed else { return }
        close()
        onFailure?(reason)
    }
}

/// Reads the responses to split-mode POSTs on one upstream connection.
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
                let keepAlive = current.version == .http11 && !current.headers.containsToken("close", in: "connection")
                upstream?.responded(status: current.status, reason: current.reason, keepAlive: keepAlive, on: context.channel)
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
            upstream?.responded(status: current.status, reason: current.reason, keepAlive: false, on: context.channel)
        }
        upstream?.connectionClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        upstream?.connectionFailed(context.channel, "\(error)")
        context.close(promise: nil)
    }
}
