import NIOCore

/// The send half of a stream: bytes the application wrote that the peer has not yet
/// acknowledged, so they can be sent again on another link if theirs dies.
///
///     acked ─────────── sent ─────────── written
///       │ sent, awaiting ack │  not sent yet  │
///
/// **Invariants**: `acked ≤ sent ≤ written`; the buffer holds exactly the bytes
/// `[acked, written)`; a FIN, once queued, occupies the one virtual byte at `written`
/// (PROTOCOL.md §5.3), so `acked == written + 1` means everything including FIN arrived.
public struct RetransmitQueue {
    private var bytes = ByteBuffer()
    public private(set) var acked: UInt64 = 0
    public private(set) var sent: UInt64 = 0
    public private(set) var written: UInt64 = 0
    /// The highest offset ever sent: bytes below it are retransmissions.
    public private(set) var highestSent: UInt64 = 0
    public private(set) var finQueued = false

    public init() {}

    public var buffered: Int { bytes.readableBytes }
    public var unsent: Int { sent >= written ? 0 : Int(written - sent) }
    public var finPending: Bool { finQueued && sent == written }
    public var finSent: Bool { finQueued && sent > written }
    public var fullyAcked: Bool { finQueued && acked > written }

    public mutating func append(_ data: inout ByteBuffer) {
        precondition(!finQueued, "write after FIN is a caller bug")
        written += UInt64(data.readableBytes)
        bytes.writeBuffer(&data)
    }

    public mutating func queueFin() { finQueued = true }

    /// The next at most `maxBytes` unsent bytes and their offset; advances `sent`.
    public mutating func take(maxBytes: Int) -> (offset: UInt64, bytes: ByteBuffer)? {
        let count = min(maxBytes, unsent)
        guard count > 0 else { return nil }
        let offset = sent
        let start = bytes.readerIndex + Int(sent - acked)
        let slice = bytes.getSlice(at: start, length: count) ?? ByteBuffer()
        sent += UInt64(count)
        highestSent = max(highestSent, sent)
        return (offset, slice)
    }

    /// Marks the FIN as sent (after `finPending`).
    public mutating func takeFin() {
        if finPending { sent = written + 1 }
    }

    /// The peer has everything before `offset`; returns how many buffered bytes were freed.
    @discardableResult
    public mutating func acknowledge(upTo offset: UInt64) -> Int {
        let limit = finQueued ? written + 1 : written
        let newAcked = min(max(offset, acked), limit)
        let freed = Int(min(newAcked, written) - min(acked, written))
        bytes.moveReaderIndex(forwardBy: freed)
        acked = newAcked
        if sent < acked { sent = acked }
        if bytes.readerIndex > 64 * 1024 && bytes.readerIndex * 2 > bytes.writerIndex { bytes.discardReadBytes() }
        return freed
    }

    /// The link carrying this stream changed: everything not acknowledged goes again.
    public mutating func rewind() { sent = acked }
}
