import NIOCore
import NIOPosix

/// A stand-in for a proxy that refuses everything: on loopback, answers the first request head
/// on each connection with one fixed HTTP response and closes.
final class FixedAnswerServer: Sendable {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let server: Channel

    static func start(answer: String) async throws -> FixedAnswerServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { $0.pipeline.addHandler(AnswerOnce(answer: answer)) }
            .bind(host: "127.0.0.1", port: 0).get()
        return FixedAnswerServer(port: server.localAddress?.port ?? 0, group: group, server: server)
    }

    private init(port: Int, group: MultiThreadedEventLoopGroup, server: Channel) {
        self.port = port
        self.group = group
        self.server = server
    }

    func stop() async throws {
        try await server.close()
        try await group.shutdownGracefully()
    }
}

private final class AnswerOnce: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let answer: String

    init(answer: String) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Any bytes will do: the client sent its head first.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
        context.close(mode: .output, promise: nil)
    }
}
