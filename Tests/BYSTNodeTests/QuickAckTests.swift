import Glibc
import NIOCore
import NIOPosix
import Testing
@testable import BYSTNode

/// QuickAck's NIO form reaches the socket (a wrong level or name would fail quietly: the
/// option is set with `try?`, as a link must not fail over it).
@Suite struct QuickAckTests {
    @Test func aChannelLeavesDelayedAckMode() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let listener = try BlockingSocket.listen()
        defer { listener.close() }
        let channel = try ClientBootstrap(group: group)
            .connect(to: SocketAddress(ipAddress: "127.0.0.1", port: Int(listener.localPort))).wait()
        defer { try? channel.close().wait() }
        let option = ChannelOptions.Types.SocketOption(level: IPPROTO_TCP, name: TCP_QUICKACK)
        let modes = try channel.eventLoop.submit {
            try channel.syncOptions?.setOption(option, value: 0)  // interactive: ACKs delayed
            let before = try channel.syncOptions?.getOption(option)
            QuickAck.request(on: channel)
            return (before, try channel.syncOptions?.getOption(option))
        }.wait()
        #expect(modes.0 == 0 && modes.1 == 1)
    }
}
