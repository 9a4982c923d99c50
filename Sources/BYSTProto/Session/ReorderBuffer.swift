import NIOCore

/// The receive side of a striped stream (PROTOCOL.md §5.3, "Striping"): bytes that arrived
/// ahead of the next expected offset, held until the gap before them is filled.
///
/// **Invariants**: chunks are sorted by offset and never overlap; every held byte lies at or
/// after the stream's `received` offset and before the limit the receiver announced, so the
/// bytes held are bounded by the stream window (the caller checks the limit before `insert`).
/// Chunks are slices of the records they arrived in (no copy).
struct ReorderBuffer {
    struct Chunk {
        var offset: UInt64
        var bytes: ByteBuffer
        var end: UInt64 { offset + UInt64(bytes.readableBytes) }
    }

    /// Beyond this many held frames, they must average at least `minAverageChunk` bytes
    /// (PROTOCOL.md §5.3): a peer cutting its data into slivers would otherwise make the
    /// array of them, not the window, what bounds our memory.
    static let freeChunks = 64
    static let minAverageChunk = 1024

    private(set) var chunks: [Chunk] = []
    private(set) var heldBytes = 0

    var isEmpty: Bool { chunks.isEmpty }
    /// The end of the highest byte held (nil when nothing is held).
    var highestEnd: UInt64? { chunks.last?.end }

    /// Holds the bytes of `bytes` (at `offset`, all beyond `received`) that are not held
    /// yet; returns how many new bytes it took, or nil when the held frames would be too
    /// many for their bytes (`freeChunks`, `minAverageChunk`).
    mutating func insert(_ bytes: ByteBuffer, at offset: UInt64) -> Int? {
        let end = offset + UInt64(bytes.readableBytes)
        // Striped data arrives mostly in ascending order: look from the back.
        var index = chunks.count
        while index > 0, chunks[index - 1].end > offset { index -= 1 }
        var cursor = offset
        var taken = 0
        while cursor < end {
            if index < chunks.count, chunks[index].offset <= cursor {
                cursor = max(cursor, chunks[index].end)
                index += 1
                continue
            }
            let gapEnd = index < chunks.count ? min(end, chunks[index].offset) : end
            let start = bytes.readerIndex + Int(cursor - offset)
            guard let piece = bytes.getSlice(at: start, length: Int(gapEnd - cursor)) else { return nil }
            chunks.insert(Chunk(offset: cursor, bytes: piece), at: index)
            index += 1
            taken += Int(gapEnd - cursor)
            cursor = gapEnd
        }
        heldBytes += taken
        guard chunks.count <= Self.freeChunks || heldBytes >= chunks.count * Self.minAverageChunk else { return nil }
        return taken
    }

    /// Hands `deliver` the held bytes that continue at `received`, in order, and returns the
    /// new next expected offset.
    mutating func drain(from received: UInt64, deliver: (ByteBuffer) -> Void) -> UInt64 {
        var next = received
        var used = 0
        while used < chunks.count, chunks[used].offset <= next {
            let chunk = chunks[used]
            used += 1
            heldBytes -= chunk.bytes.readableBytes
            guard chunk.end > next else { continue }
            let skip = Int(next - chunk.offset)
            deliver(chunk.bytes.getSlice(at: chunk.bytes.readerIndex + skip, length: chunk.bytes.readableBytes - skip) ?? ByteBuffer())
            next = chunk.end
        }
        if used > 0 { chunks.removeFirst(used) }
        return next
    }
}
