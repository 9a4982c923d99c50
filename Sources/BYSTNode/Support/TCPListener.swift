import NIOCore
import NIOPosix

/// A TCP listener on the node's event loop with the options the node's NIO listeners share
/// (metrics, `[[forward]]`): the address reusable at once, no Nagle, half-closure passed on.
/// `autoRead` off: the handler reads when it has room (backpressure).
enum TCPListener {
    static func bind(_ address: HostPort, on loop: EventLoop, autoRead: Bool = true,
                     initialize: @escaping (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        let bound = NIOLoopBound(initialize, eventLoop: loop)
        return ServerBootstrap(group: loop)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.autoRead, value: autoRead)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try bound.value(channel) }
            }
            .bind(host: address.host, port: Int(address.port))
    }
}
