/// Cryptokey routing (docs/ARCHITECTURE.md §4.2): which peer a destination belongs to, by longest
/// prefix, and whether a source address is one a peer may use.
///
/// **Invariants**: `prefixes` is sorted by prefix length, longest first, so the first match
/// is the longest; `peers[i]` belongs to `prefixes[i]`. Lookups are linear, which suits the
/// tens of prefixes a gateway has. Two arrays rather than one of (prefix, peer) tuples: a
/// lookup called from another module runs unspecialized, and walking tuples of a generic
/// type asks the runtime for their metadata on every packet.
public struct AllowedIPs<Peer: Sendable>: Sendable {
    private var prefixes: [IPPrefix] = []
    private var peers: [Peer] = []

    public init() {}

    public mutating func insert(_ prefix: IPPrefix, peer: Peer) {
        // After every prefix at least as long: equal lengths keep their insertion order.
        let index = prefixes.firstIndex { $0.length < prefix.length } ?? prefixes.count
        prefixes.insert(prefix.network, at: index)
        peers.insert(peer, at: index)
    }

    /// The peer whose prefixes hold `address` most specifically.
    public func lookup(_ address: some Collection<UInt8>) -> Peer? {
        lookup(ArraySlice(address))
    }

    /// `lookup` for the address slices `IPPacket` gives (concrete: no generic dispatch per packet).
    public func lookup(_ address: ArraySlice<UInt8>) -> Peer? {
        for index in prefixes.indices where prefixes[index].contains(address) { return peers[index] }
        return nil
    }

    public var count: Int { prefixes.count }
}
