import BYSTProto

/// What the data plane needs to know of the node's peers, as the event loop last published
/// it (`Node.publishDataPlaneRoutes`): the routing table and, per peer, the links the plane
/// owns. A value: the plane keeps its own copy, so nothing here is shared.
struct DataPlaneRoutes: Sendable {
    struct Peer: Sendable {
        /// The plane's links of the peer's current session, for packets from the TUN, in
        /// link order (a flow's hash picks one). Empty: the event loop routes the peer's packets.
        var sendLinks: [UInt64]
        /// Every plane link of the peer (retiring ones too), whose packets' sources must be
        /// this peer's in `routes` (longest prefix).
        var allLinks: [UInt64]
        /// The peer's TUN takes super-packets whole.
        var takesOffloadPackets: Bool
    }

    var routes = AllowedIPs<Int>()
    private(set) var peers: [Peer] = []
    /// Each plane link's peer (index in `peers`), from their `allLinks`.
    private var linkOwners: [UInt64: Int] = [:]

    mutating func append(_ peer: Peer) {
        for key in peer.allLinks { linkOwners[key] = peers.count }
        peers.append(peer)
    }

    /// The peer whose sources `link`'s packets must come from; `DataPlaneLink.noPeer` for a
    /// link no peer lists (a reload removed its peer, and another may have its index now).
    func owner(ofLink key: UInt64) -> Int { linkOwners[key] ?? DataPlaneLink.noPeer }
}
