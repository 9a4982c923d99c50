import NIOCore

/// One upstream POST of a split link (PROTOCOL.md §6.3) from when it is first written until
/// it is answered: its number and body, kept so that it can be sent again, the same, when
/// its connection is lost before the answer.
struct SplitPart {
    let sequence: UInt64
    /// The bytes as queued (ByteBuffers share storage: keeping them copies nothing).
    let body: [ByteBuffer]
    let size: Int
    /// Connections lost, in a row, while it waited for its answer.
    var losses = 0

    /// Takes the next part's bytes from the front of `queue`: whole buffers, up to `maxBytes`
    /// (at least one buffer, however large).
    static func take(sequence: UInt64, from queue: inout [ByteBuffer], maxBytes: Int) -> SplitPart {
        var body: [ByteBuffer] = []
        var size = 0
        var taken = 0
        for buffer in queue {
            guard taken == 0 || size + buffer.readableBytes <= maxBytes else { break }
            body.append(buffer)
            size += buffer.readableBytes
            taken += 1
        }
        queue.removeFirst(taken)
        return SplitPart(sequence: sequence, body: body, size: size)
    }
}
