/// The sending side of packet striping (PROTOCOL.md §5.4, "Packet striping") for one peer:
/// numbers its packets and picks each one's link. A link takes `quantum` bytes in a row; then
/// the next goes to the link with the fewest bytes queued (ours and the kernel's), so every
/// link's queue — and so the delay a packet sees there — stays about level, and the receiver
/// waits little for a gap to fill. A link capped at a lower rate drains slower and is picked
/// less: each takes what it can. Backlogged links (`LinkBacklog`) are passed over. Sans-IO;
/// the data plane holds one per striping peer.
public struct PacketStriper: Sendable {
    /// Bytes sent on one link in a row: one record's worth (the default largest record
    /// payload), so striping does not cut records smaller than they were.
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
    /// order); nil when there is no link. `queued(link)`: the bytes waiting on the link, or
    /// nil if it is backlogged (asked only when a quantum is used up).
    public mutating func pick(among links: [UInt64], bytes: Int, queued: (UInt64) -> Int?) -> (link: UInt64, sequence: UInt64)? {
        guard !links.isEmpty else { return nil }
        if cursor >= links.count { cursor = 0 }
        if sentOnCursor >= Self.quantum {
            sentOnCursor = 0
            // The least queued, the first after the current one among equals (round robin
            // when all are level); if every one is backlogged, simply the next.
            var best: (index: Int, queued: Int)?
            for step in 1...links.count {
                let index = (cursor + step) % links.count
                guard let load = queued(links[index]) else { continue }
                if best == nil || load < best?.queued ?? .max { best = (index, load) }
            }
            cursor = best?.index ?? (cursor + 1) % links.count
        }
        sentOnCursor += bytes
        let sequence = nextSequence
        nextSequence &+= 1
        return (links[cursor], sequence)
    }
}
