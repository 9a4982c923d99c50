import NIOCore
import NIOPosix

/// A TCP relay between two nodes that the test controls: every connection through it is a
/// link, and `cutRandomConnection()` kills one abruptly, losing whatever it had in flight.
final class ChaosRelay: Sendable {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let server: Channel
    private let pairs: LockedBox<[(Channel, Channel)]>

    /// `receiveBuffer`: SO_RCVBUF of the connections it accepts (the kernel's default if nil);
    /// a small one keeps the dialer's socket buffer small, so it fills. `halfCloseTowardsTarget`:
    /// when the dialer's connection closes, only shut the target's connection for output (a FIN,
    /// as some proxies pass a client's close on), instead of closing it. `holdCloseTowardsTarget`:
    /// keep the target's connection open then (`resetTowardsTarget` ends it).
    static func start(targetPort: Int, receiveBuffer: Int? = nil, halfCloseTowardsTarget: Bool = false,
                      holdCloseTowardsTarget: Bool = false) async throws -> ChaosRelay {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pairs = LockedBox<[(Channel, Channel)]>([])
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        // Set on the listener, so accepted sockets have it from their SYN on (window scaling).
        if let receiveBuffer { bootstrap = bootstrap.serverChannelOption(ChannelOptions.socketOption(.so_rcvbuf), value: receiveBuffer) }
        let server = try await bootstrap
            .childChannelInitializer { inbound in
                let (near, far) = GlueHandler.matchedPair()
                near.passCloseAsHalfClose = halfCloseTowardsTarget
                near.holdsClose = holdCloseTowardsTarget
                return inbound.pipeline.addHandler(near).flatMap {
                    ClientBootstrap(group: inbound.eventLoop)
                        .channelInitializer { $0.pipeline.addHandler(far) }
                        .connect(host: "127.0.0.1", port: targetPort)
                }.map { outbound in
                    pairs.withLock { $0.append((inbound, outbound)) }
                }.flatMapError { _ in inbound.close() }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ChaosRelay(port: server.localAddress?.port ?? 0, group: group, server: server, pairs: pairs)
    }

    private init(port: Int, group: MultiThreadedEventLoopGroup, server: Channel, pairs: LockedBox<[(Channel, Channel)]>) {
        self.port = port
        self.group = group
        self.server = server
        self.pairs = pairs
    }

    var openConnections: Int { pairs.withLock { $0.filter { $0.0.isActive && $0.1.isActive }.count } }

    /// Closes one live connection on both sides; returns false if none was live.
    @discardableResult
    func cutRandomConnection() -> Bool {
        let victim: (Channel, Channel)? = pairs.withLock { list in
            list.removeAll { !$0.0.isActive || !$0.1.isActive }
            guard !list.isEmpty else { return nil }
            return list.remove(at: Int.random(in: 0..<list.count))
        }
        guard let victim else { return false }
        victim.0.close(promise: nil)
        victim.1.close(promise: nil)
        return true
    }

    /// From now on the bytes the dialers send on the live connections are dropped, while the
    /// target's still reach them: one direction black-holed, as by a proxy that stopped
    /// passing request bodies on.
    func blackHoleTowardsTarget() {
        let live = pairs.withLock { $0.filter { $0.0.isActive } }
        for (inbound, _) in live {
            inbound.eventLoop.execute {
                (try? inbound.pipeline.syncOperations.handler(type: GlueHandler.self))?.dropsReads = true
            }
        }
    }

    /// Resets every connection to the target that is still open (RST, as a closing end with
    /// bytes unread does).
    func resetTowardsTarget() async throws {
        let targets = pairs.withLock { $0.map(\.1).filter(\.isActive) }
        for channel in targets {
            // Lingering 0 s: the close sends a RST.
            try await (channel as? SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
            try await channel.close()
        }
    }

    func stop() async throws {
        try await server.close()
        let all = pairs.withLock { $0 }
        for (a, b) in all {
            a.close(promise: nil)
            b.close(promise: nil)
        }
        try await group.shutdownGracefully()
    }
}

/// Copies bytes between two channels with backpressure (autoRead, but each read waits until
/// the partner is connected and writable); closing either side closes the other.
final class GlueHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// This side closing shuts the partner's output only.
    var passCloseAsHalfClose = false
    /// What this side reads is dropped, not passed on (`ChaosRelay.blackHoleTowardsTarget`).
    var dropsReads = false
    /// This side closing leaves the partner's connection open.
    var holdsClose = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let a = GlueHandler(), b = GlueHandler()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        // The partner may have asked to read before this side was connected.
        if let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !dropsReads else { return }
        partner?.context?.write(data, promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.context?.flush() }
    func channelInactive(context: ChannelHandlerContext) {
        guard !holdsClose else { return }
        partner?.context?.close(mode: passCloseAsHalfClose ? .output : .all, promise: nil)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        let partnerReady = partner.map { $0.context?.channel.isActive == true && $0.context?.channel.isWritable == true } ?? false
        if partnerReady { context.read() } else { pendingRead = true }
    }
}
