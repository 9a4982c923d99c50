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
        lookup(ArraySlice(address))
    }

    /// `lookup` for the address slices `IPPacket` gives (concrete: no generic dispatch per packet).
    public func lookup(_ address: ArraySlice<UInt8>) -> Peer? {
        for entry in entries where entry.prefix.contains(address) { return entry.peer }
        return nil
    }

    public var count: Int { entries.count }
}
