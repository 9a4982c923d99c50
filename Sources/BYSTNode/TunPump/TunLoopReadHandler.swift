import NIOCore

/// Reads a TUN queue on the event loop while `TunReader` leaves it there (light traffic).
/// Its channel runs without auto-read: each read cycle asks for the next one only if the
/// loop keeps reading, so reads stop at once when they move to the reader thread.
final class TunLoopReadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private unowned let pump: TunPump
    private let queue: Int
    private var packets = 0
    private var bytes = 0

    init(pump: TunPump, queue: Int) {
        self.pump = pump
        self.queue = queue
    }

    /// One read(2): a packet (after its virtio-net header with offloads). NIO's buffer is
    /// released before the next read, so NIO reuses it.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let read = unwrapInboundIn(data)
        packets += 1
        bytes += read.readableBytes
        read.withUnsafeReadableBytes { pump.routeReadOnLoop($0) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        defer { packets = 0; bytes = 0 }
        if pump.finishLoopReadCycle(queue: queue, packets: packets, bytes: bytes) { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pump.node.logger.warning("tun: reading queue \(queue) on the event loop failed (\(error)); its thread reads from now on")
        context.close(promise: nil)
    }

    /// Closed by an error or an end of file (not expected from a TUN), or at shutdown.
    func channelInactive(context: ChannelHandlerContext) {
        pump.loopReadingEnded(queue: queue)
        context.fireChannelInactive()
    }
}
