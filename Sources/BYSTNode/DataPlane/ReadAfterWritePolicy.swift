/// Whether the data plane reads the TUN right after writing a packet to it. A packet written
/// to a local TCP socket is often answered inside the write (an ACK), and reading it at
/// once saves the plane a wake-up; a packet for a local ping or UDP socket is not, and the
/// read only finds the queue empty. After `missesBeforeBackingOff` empty reads in a row,
/// only every `retryEvery`th write reads; one answer found reads after every write again.
/// A skipped read loses nothing: epoll wakes the plane for the answer.
struct ReadAfterWritePolicy {
    static let missesBeforeBackingOff = 16
    static let retryEvery = 16
    /// A read of at most this many bytes (virtio-net header included) is taken for the whole
    /// answer to the write: room for an ACK with options or a default-sized echo reply.
    static let smallAnswerBytes = 256

    private var misses = 0
    private var skipped = 0

    mutating func shouldRead() -> Bool {
        guard misses >= Self.missesBeforeBackingOff else { return true }
        skipped += 1
        guard skipped >= Self.retryEvery else { return false }
        skipped = 0
        return true
    }

    mutating func record(found: Bool) {
        misses = found ? 0 : min(misses + 1, Self.missesBeforeBackingOff)
    }
}
