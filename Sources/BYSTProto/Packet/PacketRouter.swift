/// Every decision about a TUN packet, in one place (docs/ARCHITECTURE.md §4.2): which peer
/// a packet read from the TUN is for, which link carries it, whether it is dropped and why;
/// whether a packet a link delivered may be written (its source must be its sender's); and
/// when reading the TUN pauses because a link cannot keep up. A value without I/O: the data
/// plane holds one, and the event loop publishes a new table whenever links, sessions or
/// peers change.
public struct PacketRouter: Sendable {
    /// What the node knows of one peer (index = position in the published table).
    public struct Peer: Sendable, Equatable {
        /// The links of the peer's current session that this router's thread sends on, in
        /// link order: a flow's hash picks one, so a flow keeps to one link.
        public var sendLinks: [UInt64]
        /// Every link of the peer this router may see packets from (retiring ones too).
        public var allLinks: [UInt64]
        /// The peer has a session with a link up somewhere (maybe on the event loop: HTTP,
        /// TLS or compressing links); false: its packets are dropped (`noSession`).
        public var hasSession: Bool
        /// No `sendLinks` here, but this other data plane has some (links are spread over the
        /// planes, one per TUN queue): the packet goes there.
        public var otherPlane: Int?
        /// The peer's TUN takes super-packets whole, in records of up to `maxPayload` bytes.
        public var takesOffloadPackets: Bool
        public var maxPayload: Int
        /// The `sendLinks` that carry sequenced packets (`packet_striping` on, and the peer
        /// reorders: PROTOCOL.md §5.4, "Packet striping"). With two or more, every packet for
        /// the peer is striped over them instead of pinned by its flow.
        public var stripeLinks: [UInt64]

        public init(sendLinks: [UInt64], allLinks: [UInt64], hasSession: Bool, otherPlane: Int? = nil, takesOffloadPackets: Bool,
                    maxPayload: Int, stripeLinks: [UInt64] = []) {
            self.sendLinks = sendLinks
            self.allLinks = allLinks
            self.hasSession = hasSession
            self.otherPlane = otherPlane
            self.takesOffloadPackets = takesOffloadPackets
            self.maxPayload = maxPayload
            self.stripeLinks = stripeLinks
        }

        /// Packets for the peer are striped here (`PacketStriper`), not pinned by flow.
        public var stripes: Bool { stripeLinks.count >= 2 }
    }

    public enum Drop: Sendable, Equatable {
        /// Not an IP packet (or a super-packet that cannot be cut).
        case malformed
        /// Only means something on the TUN's own link (IPPacket.isLinkScoped).
        case linkScoped
        /// No peer's allowed_ips holds the destination.
        case noRoute
        /// The peer has no session with a link up.
        case noSession
    }

    public enum Decision: Sendable, Equatable {
        /// Send on this link (one of the peer's `sendLinks`).
        case link(UInt64, peer: Int)
        /// Stripe over the peer's `stripeLinks` (they are this thread's), numbered.
        case stripe(peer: Int)
        /// Another data plane holds the peer's links: it sends the packet (`link(forPeer:flowHash:)`).
        case plane(Int, peer: Int, flowHash: UInt64)
        /// The peer's session has links, but none this thread sends on: the event loop queues
        /// the packet in the session, on the link `flowHash` picks there.
        case loop(peer: Int, flowHash: UInt64)
        case drop(Drop)
    }

    /// A link no published peer lists owns no source: a reload removed its peer, and another
    /// peer may have its index now.
    public static let noPeer = -1

    public private(set) var routes = AllowedIPs<Int>()
    public private(set) var peers: [Peer] = []
    private var linkOwners: [UInt64: Int] = [:]

    public init() {}

    /// Adds the next peer (its index is the number added before it) with its allowed_ips.
    public mutating func append(_ peer: Peer, allowedIPs: [IPPrefix]) {
        for prefix in allowedIPs { routes.insert(prefix, peer: peers.count) }
        for key in peer.allLinks { linkOwners[key] = peers.count }
        peers.append(peer)
    }

    /// Replaces what the router knows of the peer at `index` (its links changed): O(its links),
    /// so a hub with thousands of peers does not rebuild its table per link event.
    public mutating func update(_ peer: Peer, at index: Int) {
        guard index >= 0, index < peers.count else { return }
        for key in peers[index].allLinks where linkOwners[key] == index { linkOwners[key] = nil }
        for key in peer.allLinks { linkOwners[key] = index }
        peers[index] = peer
    }

    /// Where a packet read from the TUN goes; `packet` parsed from `bytes`.
    public func route(_ packet: IPPacket, in bytes: [UInt8]) -> Decision {
        guard !packet.isLinkScoped(bytes) else { return .drop(.linkScoped) }
        guard let index = routes.lookup(packet.destination), index < peers.count else { return .drop(.noRoute) }
        let peer = peers[index]
        guard peer.hasSession else { return .drop(.noSession) }
        if peer.stripes { return .stripe(peer: index) }
        let hash = packet.flowHash(bytes)
        guard let link = link(forPeer: index, flowHash: hash) else {
            if let plane = peer.otherPlane { return .plane(plane, peer: index, flowHash: hash) }
            return .loop(peer: index, flowHash: hash)
        }
        return .link(link, peer: index)
    }

    /// The link a flow of peer `index` takes here, if this thread has any of the peer's.
    public func link(forPeer index: Int, flowHash: UInt64) -> UInt64? {
        guard index >= 0, index < peers.count, !peers[index].sendLinks.isEmpty else { return nil }
        let links = peers[index].sendLinks
        return links[Int(flowHash % UInt64(links.count))]
    }

    /// The peer whose sources `link`'s packets must come from, or `noPeer`.
    public func owner(ofLink key: UInt64) -> Int { linkOwners[key] ?? Self.noPeer }

    /// Whether the peer at index `sender` may send from `source`: it holds the longest prefix
    /// that matches (WireGuard's rule). A sender of `noPeer` owns nothing.
    public func mayWrite(source: ArraySlice<UInt8>, from sender: Int) -> Bool {
        sender != Self.noPeer && routes.lookup(source) == sender
    }
}

/// Backpressure from links to the TUN: while any link holds more than `highWater` unsent
/// bytes, the TUN is not read (its own queue holds packets, and the kernel drops from it
/// rather than we from ours); reading resumes once every such link is below `lowWater`.
public struct LinkBacklog: Sendable {
    public static let highWater = 1 << 20
    public static let lowWater = 256 * 1024

    private var backlogged: Set<UInt64> = []

    public init() {}

    /// Whether the TUN may be read now.
    public var readsTun: Bool { backlogged.isEmpty }

    public func isBacklogged(_ link: UInt64) -> Bool { backlogged.contains(link) }

    /// `link` has `unsent` bytes after a flush; returns its new state if it changed.
    public mutating func note(unsent: Int, on link: UInt64) -> Bool? {
        let was = backlogged.contains(link)
        let now = unsent > (was ? Self.lowWater : Self.highWater)
        guard now != was else { return nil }
        if now { backlogged.insert(link) } else { backlogged.remove(link) }
        return now
    }

    /// `link` closed: it holds nothing back any more.
    public mutating func remove(_ link: UInt64) -> Bool { backlogged.remove(link) != nil }
}
