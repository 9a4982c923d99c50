/// The sending side of packet striping (PROTOCOL.md §5.4, "Packet striping") for one peer:
/// numbers its packets and picks each one's link — round robin over the peer's striping
/// links, `quantum` bytes at a time, passing over links that are backlogged (`LinkBacklog`),
/// so that a link capped at a lower rate takes what it can and the others the rest. Sans-IO;
/// the data plane holds one per striping peer.
public struct PacketStriper: Sendable {
    /// Bytes sent on one link before moving to the next: one record's worth (the default
    /// largest record payload), so striping does not cut records smaller than they were.
    public static let quantum = 64 * 1024

    /// The next packet's sequence number.
    public private(set) var nextSequence: UInt64
    private var cursor = 0
    private var sentOnCursor = 0

    /// `firstSequence`: random for a real sender, so that a receiver tells a new sequence (a
    /// restart) from late packets of the old one (`PacketReorder.resyncDistance`).
    public init(firstSequence: UInt64) {
        nextSequence = firstSequence
    }

    /// The link and sequence number for a packet of `bytes` bytes among `links` (in a fixed
    /// order); nil when there is no link.
    public mutating func pick(among links: [UInt64], bytes: Int, isBacklogged: (UInt64) -> Bool)
        -> (link: UInt64, sequence: UInt64)? {
        guard !links.isEmpty else { return nil }
        if cursor >= links.count { cursor = 0 }
        if sentOnCursor >= Self.quantum || isBacklogged(links[cursor]) {
            sentOnCursor = 0
            // The next link that takes more; if every one is backlogged, simply the next.
            var candidate = cursor
            for step in 1...links.count {
                let index = (cursor + step) % links.count
                if !isBacklogged(links[index]) {
                    candidate = index
                    break
                }
                if step == 1 { candidate = index }
            }
            cursor = candidate
        }
        sentOnCursor += bytes
        let sequence = nextSequence
        nextSequence &+= 1
        return (links[cursor], sequence)
    }
}
