// The data planes' route tables (PacketRouter, one per plane): which plane a new link
// joins, what each plane is told of a peer when its links change (O(its links)), and the
// whole table when the list of peers changes (built on a pool thread on reload).
import BYSTProto
import NIOCore
import NIOPosix

extension TunService {
    /// The plane a newly established link of `peer` moves to: the one with the fewest of the
    /// peer's links, then the fewest links in all — so each plane can send a peer's packets
    /// on a link of its own (the kernel keeps each flow on one TUN queue, that is one plane).
    /// A link that carries sequenced packets (`sequenced`: it negotiated `sequencedPackets`)
    /// joins the peer's other such links on one plane, which numbers and reorders the peer's
    /// packets without locks (PROTOCOL.md §5.4, "Packet striping"); the first goes to the plane
    /// with the fewest links. O(the peer's links): a hub's handshakes do not walk every peer.
    func planeForNewLink(of peer: PeerRuntime, sequenced: Bool = false) -> DataPlane? {
        guard planes.count > 1 else { return planes.first }
        var ofPeer = [Int](repeating: 0, count: planes.count)
        var sequencedPlane: DataPlane?
        peer.forEachSession { session in
            for link in session.links.values {
                guard let plane = link.plane else { continue }
                if sequenced, link.negotiatedFeatures.contains(.sequencedPackets) { sequencedPlane = plane.owner }
                ofPeer[plane.owner.index] += 1
            }
        }
        if let sequencedPlane { return sequencedPlane }
        let all = linksOnPlanes
        if sequenced { return planes.min { all[$0.index] < all[$1.index] } }
        return planes.min { (ofPeer[$0.index], all[$0.index]) < (ofPeer[$1.index], all[$1.index]) }
    }

    /// Tells each data plane what `peer`'s packets take there now (its links changed): O(its
    /// links). Posted in order with the links' payloads. While a new table is being built
    /// (`rebuildRoutes`), the peer is told again once it is in place.
    func publishRoutes(peer changed: PeerRuntime?) {
        guard let changed else { return }
        routeTableBuild?.changed(changed)
        let entries = routerEntries(of: changed)
        changed.publishedRouterEntries = entries
        let index = loopPackets.routeIndex(of: changed)
        guard index != PacketRouter.noPeer else { return }
        for (plane, entry) in zip(planes, entries) {
            plane.post(.peer(entry, index: index, version: loopPackets.routesVersion))
        }
    }

    /// The list of peers changed (start): the whole table, O(peers), built here.
    func publishRoutesNow() {
        let table = routeTableInputs()
        install(Self.routers(table.inputs, planes: planes.count), for: table.peers)
    }

    /// The list of peers changed (reload): the whole table is built on a pool thread (a hub's
    /// 10,000 prefixes take milliseconds) and swapped in when done; the planes route with the
    /// table they have until then. A rebuild asked for meanwhile follows it.
    func rebuildRoutes() {
        guard routeTableBuild == nil else {
            routeTableBuild?.again = true
            return
        }
        routeTableBuild = RouteTableBuild()
        let table = routeTableInputs()
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { [inputs = table.inputs, planes = planes.count] in
            Self.routers(inputs, planes: planes)
        }.assumeIsolated().whenSuccess { [self] routers in
            let build = routeTableBuild
            routeTableBuild = nil
            install(routers, for: table.peers)
            for peer in build?.changedPeers ?? [] { publishRoutes(peer: peer) }
            if build?.again == true { rebuildRoutes() }
        }
    }

    /// What the table is made of, as values: the peers in table order (`currentPeers`, with
    /// their configs, which give the prefixes) and what the planes were last told of each (kept
    /// by `publishRoutes`: nothing is worked out here, on the loop).
    private func routeTableInputs() -> (peers: [PeerRuntime], inputs: RouteTableInputs) {
        let (peers, configs) = currentPeers()
        return (peers, RouteTableInputs(peers: configs, entries: peers.map(\.publishedRouterEntries),
                                        sessionless: sessionlessRouterEntries))
    }

    /// One router per plane from `inputs` (values only: any thread).
    private static func routers(_ inputs: RouteTableInputs, planes: Int) -> [PacketRouter] {
        var routers = [PacketRouter](repeating: PacketRouter(), count: planes)
        for (peer, entries) in zip(inputs.peers, inputs.entries) {
            for (plane, entry) in (entries ?? inputs.sessionless).enumerated() {
                routers[plane].append(entry, allowedIPs: peer.allowedIPs)
            }
        }
        return routers
    }

    private func install(_ routers: [PacketRouter], for table: [PeerRuntime]) {
        let version = loopPackets.peersChanged(table)
        for (plane, router) in zip(planes, routers) { plane.post(.routes(router, version: version)) }
    }

    /// What each plane's router knows of a peer without sessions: no links anywhere.
    private var sessionlessRouterEntries: [PacketRouter.Peer] {
        let entry = PacketRouter.Peer(sendLinks: [], allLinks: [], hasSession: false, takesOffloadPackets: false, maxPayload: 0)
        return [PacketRouter.Peer](repeating: entry, count: planes.count)
    }

    /// What each plane's router knows of `peer`: its links there, or which plane has some.
    private func routerEntries(of peer: PeerRuntime) -> [PacketRouter.Peer] {
        let current = peer.sessionForNewStream()
        let entry = PacketRouter.Peer(
            sendLinks: [], allLinks: [], hasSession: current?.inspect({ $0.hasLinks }) ?? false,
            takesOffloadPackets: current?.peerTakesOffloadPackets ?? false, maxPayload: current?.peerMaxPayload ?? 0)
        var entries = [PacketRouter.Peer](repeating: entry, count: planes.count)
        for session in peer.sessions {
            for id in session.links.keys.sorted() {
                guard let link = session.links[id], let plane = link.plane, link.isEstablished else { continue }
                entries[plane.owner.index].allLinks.append(plane.key)
                guard session === current, !session.inspect({ $0.isRetiring(id) }) else { continue }
                entries[plane.owner.index].sendLinks.append(plane.key)
                if peer.config.packetStriping, link.negotiatedFeatures.contains(.sequencedPackets) {
                    entries[plane.owner.index].stripeLinks.append(plane.key)
                }
            }
        }
        // A striping peer's packets all go to the plane that stripes them (whatever queue the
        // kernel read them on); a plane without links of the peer hands its packets to one
        // that has some.
        if let striping = entries.indices.first(where: { entries[$0].stripes }) {
            for index in entries.indices {
                if index != striping { entries[index].sendLinks = [] }
                // Whole super-packets must fit a record with the sequenced frame's longer header.
                entries[index].maxPayload -= Frame.sequencedPacketHeaderSize - Frame.packetHeaderSize
            }
        }
        let holder = entries.indices.first { entries[$0].stripes } ?? entries.indices.first { !entries[$0].sendLinks.isEmpty }
        for index in entries.indices where entries[index].sendLinks.isEmpty { entries[index].otherPlane = holder }
        return entries
    }
}

/// The running peers' part of a route table, in table order: their configs, and their
/// entries (per plane) as last published; nil (a peer never up) gets `sessionless`.
struct RouteTableInputs: Sendable {
    let peers: [PeerConfig]
    let entries: [[PacketRouter.Peer]?]
    let sessionless: [PacketRouter.Peer]
}

/// A route table being built off the event loop (`TunService.rebuildRoutes`): the peers
/// whose entries changed meanwhile, told again once it is in place, and whether another
/// rebuild was asked for.
struct RouteTableBuild {
    private(set) var changedPeers: [PeerRuntime] = []
    private var seen: Set<ObjectIdentifier> = []
    var again = false

    mutating func changed(_ peer: PeerRuntime) {
        if seen.insert(ObjectIdentifier(peer)).inserted { changedPeers.append(peer) }
    }
}
