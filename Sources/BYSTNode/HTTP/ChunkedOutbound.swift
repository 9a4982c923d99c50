import BYSTProto
import NIOCore

/// Collects a link's writes until flush and sends them as one HTTP chunk (PROTOCOL.md §6.1):
/// framing costs a few bytes per flush, not per record. Buffers go out as they are (one
/// `writev`), only the chunk header and trailer are new.
struct ChunkedOutbound {
    typealias Write = (buffer: ByteBuffer, promise: EventLoopPromise<Void>?)

    private var pending: [Write] = []
    private var pendingBytes = 0

    mutating func add(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        pending.append((buffer, promise))
        pendingBytes += buffer.readableBytes
    }

    /// What was collected since the last flush, taken out (the collector is empty after).
    struct Batch {
        fileprivate let writes: [Write]
        fileprivate let size: Int
    }

    mutating func take() -> Batch {
        defer {
            pending = []
            pendingBytes = 0
        }
        return Batch(writes: pending, size: pendingBytes)
    }

    /// Writes `batch` (as one chunk when `chunked`, else raw) and flushes. Call it with
    /// `take()`'s result, not while holding the collector: a failing write closes the
    /// channel at once, and its handlers may come back to the collector (`fail`) meanwhile.
    static func send(_ batch: Batch, context: ChannelHandlerContext, chunked: Bool) {
        if chunked, batch.size > 0 {
            var header = context.channel.allocator.buffer(capacity: 20)
            ChunkEncoding.writeHeader(size: batch.size, into: &header)
            context.write(NIOAny(header), promise: nil)
        }
        for write in batch.writes { context.write(NIOAny(write.buffer), promise: write.promise) }
        if chunked, batch.size > 0 {
            var trailer = context.channel.allocator.buffer(capacity: 2)
            ChunkEncoding.writeTrailer(into: &trailer)
            context.write(NIOAny(trailer), promise: nil)
        }
        context.flush()
    }

    /// Writes were dropped (the channel is closing): fail their promises.
    mutating func fail(_ error: Error) {
        let writes = pending
        pending = []
        pendingBytes = 0
        for write in writes { write.promise?.fail(error) }
    }
}
