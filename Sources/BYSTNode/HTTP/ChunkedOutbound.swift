import BYSTProto
import NIOCore

/// Collects a link's writes until flush and sends them as one HTTP chunk (PROTOCOL.md §6.1):
/// framing costs a few bytes per flush, not per record. Buffers go out as they are (one
/// `writev`), only the chunk header and trailer are new — and those are written into one
/// small buffer kept from flush to flush, like the array of writes: once the socket took a
/// flush nothing else holds either, so a flush allocates nothing.
struct ChunkedOutbound {
    typealias Write = (buffer: ByteBuffer, promise: EventLoopPromise<Void>?)

    private var pending: [Write] = []
    private var pendingBytes = 0
    /// The last batch's array, given back empty by `recycle`.
    private var spareWrites: [Write] = []
    private var framing = ByteBuffer()

    mutating func add(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        pending.append((buffer, promise))
        pendingBytes += buffer.readableBytes
    }

    /// What was collected since the last flush, taken out (the collector is empty after).
    struct Batch {
        fileprivate var writes: [Write]
        fileprivate var header: ByteBuffer?
        fileprivate var trailer: ByteBuffer?
    }

    /// Takes what was collected, framed as one chunk when `chunked` (else raw).
    mutating func take(chunked: Bool, allocator: ByteBufferAllocator) -> Batch {
        var writes = spareWrites
        spareWrites = []
        swap(&writes, &pending)
        defer { pendingBytes = 0 }
        guard chunked, pendingBytes > 0 else { return Batch(writes: writes) }
        // Both written before either is sliced: a write into shared storage would copy it.
        if framing.capacity == 0 { framing = allocator.buffer(capacity: 32) } else { framing.clear() }
        ChunkEncoding.writeHeader(size: pendingBytes, into: &framing)
        let headerLength = framing.readableBytes
        ChunkEncoding.writeTrailer(into: &framing)
        return Batch(writes: writes, header: framing.getSlice(at: 0, length: headerLength),
                     trailer: framing.getSlice(at: headerLength, length: framing.readableBytes - headerLength))
    }

    /// Writes `batch` and flushes. Call it with `take()`'s result, not while holding the
    /// collector: a failing write closes the channel at once, and its handlers may come back
    /// to the collector (`fail`) meanwhile. Then give the batch back with `recycle`.
    static func send(_ batch: Batch, context: ChannelHandlerContext) {
        if let header = batch.header { context.write(NIOAny(header), promise: nil) }
        for write in batch.writes { context.write(NIOAny(write.buffer), promise: write.promise) }
        if let trailer = batch.trailer { context.write(NIOAny(trailer), promise: nil) }
        context.flush()
    }

    /// A sent batch's array, kept for the next one.
    mutating func recycle(_ batch: inout Batch) {
        batch.writes.removeAll(keepingCapacity: true)
        if spareWrites.capacity == 0 { swap(&spareWrites, &batch.writes) }
    }

    /// Writes were dropped (the channel is closing): fail their promises.
    mutating func fail(_ error: Error) {
        let writes = pending
        pending = []
        pendingBytes = 0
        for write in writes { write.promise?.fail(error) }
    }
}
