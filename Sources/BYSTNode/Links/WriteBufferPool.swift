import NIOCore

/// Full-size write batch buffers shared by the node's links (event loop only). A link's bulk
/// batch takes the one given back longest ago, and only once the pool has two: that one was
/// flushed to the socket at least a pump before, which has usually sent it by then, so `clear`
/// finds it free and nothing is allocated. Buffers given back during a pump wait for its flush
/// (`flushed`): until then NIO holds them unsent. Shared rather than kept per link: a link that
/// falls idle after a burst holds no full-size buffer, and the node holds at most `kept`.
final class WriteBufferPool {
    private var ready: [ByteBuffer] = []
    private var written: [ByteBuffer] = []
    static let kept = 4

    /// The buffer flushed longest ago, if there are two or more.
    func take() -> ByteBuffer? {
        ready.count >= 2 ? ready.removeFirst() : nil
    }

    /// A buffer written in this pump (or unused); let go when `kept` are already here.
    func giveBack(_ buffer: ByteBuffer) {
        if ready.count + written.count < Self.kept { written.append(buffer) }
    }

    /// The pump has flushed: what it gave back may be taken again.
    func flushed() {
        guard !written.isEmpty else { return }
        ready.append(contentsOf: written)
        written.removeAll(keepingCapacity: true)
    }
}
