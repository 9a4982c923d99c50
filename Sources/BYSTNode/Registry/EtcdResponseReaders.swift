// Response side of the etcd gateway's HTTP/1.1, on BYSTProto's sans-IO codec (the same
// one SplitUpstream's POSTs use; it reads responses, so no second HTTP stack is needed):
//
//   EtcdUnaryReader:  request ─▶ head ▸ body (sized, chunked or to close, ≤ limit) ─▶ promise
//   EtcdStreamReader: request ─▶ head (200) ▸ chunked body ─split at LF─▶ onLine … ─▶ onEnd
//
// Both write their request when the connection comes up and own nothing but bounded
// buffers: a hostile or broken server gets an error, never unbounded memory.
import BYSTProto
import NIOCore

/// A whole (bounded) response to one POST.
struct EtcdHTTPResponse: Sendable {
    var status: Int
    var reason: String
    var body: ByteBuffer
}

/// Why a request got no usable answer from a member: all of them mean "try another one".
struct EtcdTransportError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Reads one response into memory and completes `promise` with it, then closes.
final class EtcdUnaryReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: ByteBuffer
    private let promise: EventLoopPromise<EtcdHTTPResponse>
    private let limit: Int
    private var parser = HTTPHeadParser()
    private var head: HTTPResponseHead?
    private var decoder: HTTPBodyDecoder?
    private var inbound = ByteBuffer()
    private var body = ByteBuffer()
    private var done = false

    init(request: ByteBuffer, promise: EventLoopPromise<EtcdHTTPResponse>, limit: Int) {
        self.request = request
        self.promise = promise
        self.limit = limit
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do throws(EtcdTransportError) {
            if let response = try process() { finish(context, .success(response)) }
        } catch {
            finish(context, .failure(error))
        }
        if !done { inbound.discardReadBytes() }
    }

    /// The response once complete; nil = more bytes needed.
    private func process() throws(EtcdTransportError) -> EtcdHTTPResponse? {
        while head == nil {
            guard let parsed = try http({ () throws(HTTPError) in try parser.parseResponse(&inbound) }) else { return nil }
            // 100 Continue and other interim answers precede the real one.
            if (100..<200).contains(parsed.status) { continue }
            let framing = try http { () throws(HTTPError) in try HTTPBodyFraming.response(parsed, requestMethod: "POST") }
            if case .contentLength(let length) = framing, length > limit { throw .tooLarge(limit) }
            head = parsed
            decoder = HTTPBodyDecoder(framing: framing)
        }
        guard var current = decoder, let head else { return nil }
        defer { decoder = current }
        while let part = try http({ () throws(HTTPError) in try current.next(&inbound) }) {
            switch part {
            case .end: return EtcdHTTPResponse(status: head.status, reason: head.reason, body: body)
            case .data(var bytes):
                guard body.readableBytes + bytes.readableBytes <= limit else { throw .tooLarge(limit) }
                body.writeBuffer(&bytes)
            }
        }
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            // A close-delimited body ends here; anything else was cut short.
            if var current = decoder, let head, (try? current.endOfInput()) != nil {
                finish(context, .success(EtcdHTTPResponse(status: head.status, reason: head.reason, body: body)))
            } else {
                finish(context, .failure(EtcdTransportError("etcd closed the connection before answering")))
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(context, .failure(EtcdTransportError("\(error)")))
    }

    private func finish(_ context: ChannelHandlerContext, _ result: Result<EtcdHTTPResponse, EtcdTransportError>) {
        guard !done else { return }
        done = true
        inbound.clear()
        switch result {
        case .success(let response): promise.succeed(response)
        case .failure(let error): promise.fail(error)
        }
        context.close(promise: nil)
    }
}

/// Reads a streaming RPC's chunked NDJSON answer line by line until the stream ends,
/// fails, or `close()` (after which nothing more is reported).
final class EtcdStreamReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Written when the connection comes up: set before it is made (once the token is known).
    var request = ByteBuffer()
    private let maxLine: Int
    /// One complete line (without LF), never empty.
    private let onLine: (ByteBuffer) -> Void
    /// Called once when the stream ends by itself, with why.
    private let onEnd: (String) -> Void
    private var context: ChannelHandlerContext?
    private var parser = HTTPHeadParser()
    private var decoder: HTTPBodyDecoder?
    private var inbound = ByteBuffer()
    private var line = ByteBuffer()
    private var ended = false

    init(maxLine: Int, onLine: @escaping (ByteBuffer) -> Void, onEnd: @escaping (String) -> Void) {
        self.maxLine = maxLine
        self.onLine = onLine
        self.onEnd = onEnd
    }

    /// Closed, or ended by itself.
    var isClosed: Bool { ended }

    /// Stops the stream without reporting its end.
    func close() {
        ended = true
        context?.close(promise: nil)
    }

    /// The connection could not be made.
    func connectFailed(_ reason: String) { end(reason) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        guard !ended else { return context.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ended else { return }
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do throws(EtcdTransportError) { try process() } catch { end(error.description) }
        if ended { inbound.clear() } else { inbound.discardReadBytes() }
    }

    private func process() throws(EtcdTransportError) {
        while decoder == nil {
            guard let head = try http({ () throws(HTTPError) in try parser.parseResponse(&inbound) }) else { return }
            if (100..<200).contains(head.status) { continue }
            guard head.status == 200 else { throw EtcdTransportError("HTTP \(head.status) \(head.reason)") }
            decoder = HTTPBodyDecoder(framing: try http { () throws(HTTPError) in try HTTPBodyFraming.response(head, requestMethod: "POST") })
        }
        while !ended, var current = decoder {
            let part = try http { () throws(HTTPError) in try current.next(&inbound) }
            // The decoder's progress through a chunk counts even when it needs more bytes.
            decoder = current
            guard let part else { return }
            guard case .data(let bytes) = part else { throw EtcdTransportError("etcd ended the stream") }
            try split(bytes)
        }
    }

    /// Cuts body bytes into lines; a line may span chunks (and reads).
    private func split(_ bytes: ByteBuffer) throws(EtcdTransportError) {
        var rest = bytes
        while !ended, rest.readableBytes > 0 {
            let view = rest.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                guard line.readableBytes + rest.readableBytes <= maxLine else { throw .lineTooLong(maxLine) }
                line.writeBuffer(&rest)
                return
            }
            let length = view.distance(from: view.startIndex, to: newline)
            guard line.readableBytes + length <= maxLine, var part = rest.readSlice(length: length) else {
                throw .lineTooLong(maxLine)
            }
            rest.moveReaderIndex(forwardBy: 1)
            line.writeBuffer(&part)
            var complete = line
            line = ByteBuffer()
            if complete.readableBytesView.last == UInt8(ascii: "\r") { complete.moveWriterIndex(to: complete.writerIndex - 1) }
            if complete.readableBytes > 0 { onLine(complete) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end("etcd closed the watch connection")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        end("\(error)")
    }

    private func end(_ reason: String) {
        guard !ended else { return }
        ended = true
        context?.close(promise: nil)
        onEnd(reason)
    }
}

/// Runs one codec step, turning the peer's broken HTTP into a transport error.
private func http<T>(_ step: () throws(HTTPError) -> T) throws(EtcdTransportError) -> T {
    do throws(HTTPError) { return try step() } catch { throw EtcdTransportError("malformed HTTP from etcd: \(error)") }
}

extension EtcdTransportError {
    static func tooLarge(_ limit: Int) -> EtcdTransportError {
        EtcdTransportError("etcd's response exceeds \(limit) bytes")
    }

    static func lineTooLong(_ limit: Int) -> EtcdTransportError {
        EtcdTransportError("a line of etcd's stream exceeds \(limit) bytes")
    }
}
