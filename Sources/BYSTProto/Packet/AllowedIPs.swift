/// Cryptokey routing (DESIGN.md §4): which peer a destination belongs to, by longest
/// prefix, and whether a source address is one a peer may use.
///
/// **Invariants**: entries are kept sorted by prefix length, longest first, so the first
/// match is the longest; lookups are linear, which suits the tens of prefixes a gateway has.
public struct AllowedIPs<Peer: Sendable>: Sendable {
    private var entries: [(prefix: IPPrefix, peer: Peer)] = []

    public init() {}

    public mutating func insert(_ prefix: IPPrefix, peer: Peer) {
        entries.append((prefix.network, peer))
        entries.sort { $0.prefix.length > $1.prefix.length }
    }

    /// The peer whose prefixes hold `address` most specifically.
    public func lookup(_ address: some Collection<UInt8>) -> Peer? {
        entries.first { $0.prefix.contains(address) }?.peer
    }

    public var count: Int { entries.count }
}
