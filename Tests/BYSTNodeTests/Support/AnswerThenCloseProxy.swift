import Foundation
import NIOCore
import NIOPosix

/// A reverse proxy in front of a hub's HTTP listener that treats POSTs as tinyproxy 1.11
/// does: it passes one request per connection, relays the answer as it is (HTTP/1.1 without
/// `Connection: close`) and closes the connection right after it. Whatever the client wrote
/// meanwhile is never forwarded (it usually earns the client a reset). Other requests (a split
/// link's GET) are relayed both ways untouched.
final class AnswerThenCloseProxy: Sendable {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let server: Channel
    /// POST answers relayed, each followed by a close.
    let answeredAndClosed: LockedBox<Int>

    static func start(targetPort: Int) async throws -> AnswerThenCloseProxy {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let answered = LockedBox(0)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let (near, far) = GlueHandler.matchedPair()
                return inbound.pipeline.addHandlers([OneRequestThenClose(answered: answered), near]).flatMap {
                    ClientBootstrap(group: inbound.eventLoop)
                        .channelInitializer { $0.pipeline.addHandler(far) }
                        .connect(host: "127.0.0.1", port: targetPort)
                }.map { _ in }.flatMapError { _ in inbound.close() }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return AnswerThenCloseProxy(port: server.localAddress?.port ?? 0, group: group, server: server, answered: answered)
    }

    private init(port: Int, group: MultiThreadedEventLoopGroup, server: Channel, answered: LockedBox<Int>) {
        self.port = port
        self.group = group
        self.server = server
        answeredAndClosed = answered
    }

    func stop() async throws {
        try await server.close()
        try await group.shutdownGracefully()
    }
}

/// On the client's side of one proxied connection: lets the first request through (for a POST,
/// its head and `Content-Length` bytes of body, nothing after), and for a POST closes the
/// connection as soon as the answer's head (its body is empty) has been relayed.
private final class OneRequestThenClose: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Request {
        case readingHead(ByteBuffer)
        case postBody(remaining: Int)
        case postDone
        case other
    }

    private static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)
    private let answered: LockedBox<Int>
    private var request = Request.readingHead(ByteBuffer())
    private var answer = ByteBuffer()

    init(answered: LockedBox<Int>) {
        self.answered = answered
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch request {
        case .other:
            context.fireChannelRead(data)
        case .postDone:
            return
        case .postBody(let remaining):
            forwardBody(&bytes, remaining: remaining, context)
        case .readingHead(var head):
            head.writeBuffer(&bytes)
            guard let end = Self.find(Self.headEnd, in: head) else {
                request = .readingHead(head)
                if head.readableBytes > 64 << 10 { context.close(promise: nil) }
                return
            }
            let headBytes = head.readSlice(length: end + Self.headEnd.count) ?? ByteBuffer()
            let text = String(buffer: headBytes)
            guard text.hasPrefix("POST ") else {
                request = .other
                context.fireChannelRead(wrapInboundOut(headBytes))
                if head.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(head)) }
                return
            }
            context.fireChannelRead(wrapInboundOut(headBytes))
            forwardBody(&head, remaining: Self.contentLength(text), context)
        }
    }

    private func forwardBody(_ bytes: inout ByteBuffer, remaining: Int, _ context: ChannelHandlerContext) {
        let count = min(remaining, bytes.readableBytes)
        if count > 0, let slice = bytes.readSlice(length: count) { context.fireChannelRead(wrapInboundOut(slice)) }
        request = remaining - count > 0 ? .postBody(remaining: remaining - count) : .postDone
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch request {
        case .other, .readingHead:
            context.write(data, promise: promise)
        case .postBody, .postDone:
            var bytes = unwrapOutboundIn(data)
            answer.writeBuffer(&bytes)
            promise?.succeed()
            guard let end = Self.find(Self.headEnd, in: answer), let head = answer.readSlice(length: end + Self.headEnd.count) else { return }
            answered.withLock { $0 += 1 }
            context.writeAndFlush(wrapOutboundOut(head), promise: nil)
            context.close(promise: nil)
        }
    }

    private static func contentLength(_ head: String) -> Int {
        for line in head.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                return Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return 0
    }

    private static func find(_ needle: [UInt8], in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes in
            guard bytes.count >= needle.count else { return nil }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if (1..<needle.count).allSatisfy({ bytes[start + $0] == needle[$0] }) { return start }
            }
            return nil
        }
    }
}
