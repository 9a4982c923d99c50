import BYSTProto
import NIOCore

/// Collects a link's writes until flush and sends them as one HTTP chunk (PROTOCOL.md §6.1):
/// framing costs a few bytes per flush, not per record. Buffers go out as they are (one
/// `writev`), only the chunk header and trailer are new.
struct ChunkedOutbound {
    private var pending: [(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
    private var pendingBytes = 0

    mutating func add(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        pending.append((buffer, promise))
        pendingBytes += buffer.readableBytes
    }

    /// Writes what was collected (as one chunk when `chunked`, else raw) and flushes.
    mutating func flush(context: ChannelHandlerContext, chunked: Bool) {
        defer {
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
        }
        guard pendingBytes > 0 else {
            for write in pending { context.write(NIOAny(write.buffer), promise: write.promise) }
            context.flush()
            return
        }
        if chunked {
            var header = context.channel.allocator.buffer(capacity: 20)
            ChunkEncoding.writeHeader(size: pendingBytes, into: &header)
            context.write(NIOAny(header), promise: nil)
        }
        for write in pending { context.write(NIOAny(write.buffer), promise: write.promise) }
        if chunked {
            var trailer = context.channel.allocator.buffer(capacity: 2)
            ChunkEncoding.writeTrailer(into: &trailer)
            context.write(NIOAny(trailer), promise: nil)
        }
        context.flush()
    }

    /// Writes were dropped (the channel is closing): fail their promises.
    mutating func fail(_ error: Error) {
        for write in pending { write.promise?.fail(error) }
        pending.removeAll()
        pendingBytes = 0
    }
}
