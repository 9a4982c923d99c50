import NIOCore

/// Full-size write batch buffers shared by the node's links (event loop only). A link's bulk
/// batch takes the one given back longest ago — by then the socket has usually sent it, so
/// `clear` finds it free and nothing is allocated — and gives it back after the write. Shared
/// rather than kept per link: a link that falls idle after a burst holds no full-size buffer,
/// and the node holds at most `kept` of them whatever its number of links.
final class WriteBufferPool {
    private var buffers: [ByteBuffer] = []
    static let kept = 4

    /// The buffer given back longest ago, if any.
    func take() -> ByteBuffer? {
        buffers.isEmpty ? nil : buffers.removeFirst()
    }

    /// A buffer written and no longer the link's; let go when `kept` are already here.
    func giveBack(_ buffer: ByteBuffer) {
        if buffers.count < Self.kept { buffers.append(buffer) }
    }
}
