import Testing
@testable import BYSTProto

/// Every TUN packet decision (PacketRouter): longest prefix, link choice per flow, drops by
/// reason, source ownership (also across a reload), and backpressure (LinkBacklog).
@Suite struct PacketRouterTests {
    /// A UDP/IPv4 packet from `source` to `destination` with the given ports.
    static func udp(from source: [UInt8], to destination: [UInt8], sourcePort: UInt16 = 40000, port: UInt16 = 53) -> [UInt8] {
        var packet: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0] + source + destination
        packet += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF), 0, 8, 0, 0]
        return packet
    }

    static func peer(links: [UInt64], hasSession: Bool = true, allLinks: [UInt64]? = nil) -> PacketRouter.Peer {
        PacketRouter.Peer(sendLinks: links, allLinks: allLinks ?? links, hasSession: hasSession,
                          takesOffloadPackets: false, maxPayload: 65535)
    }

    static func prefixes(_ strings: String...) throws -> [IPPrefix] {
        try strings.map { try #require(IPPrefix($0)) }
    }

    func route(_ router: PacketRouter, _ bytes: [UInt8]) throws -> PacketRouter.Decision {
        let packet = try #require(IPPacket(bytes))
        return router.route(packet, in: bytes)
    }

    /// wide: 10.0.0.0/8 over links 1, 2; office: 10.3.0.0/24 over link 3; http: 10.4.0.0/16,
    /// links on the event loop; idle: 10.5.0.0/16, no session.
    func hub() throws -> PacketRouter {
        var router = PacketRouter()
        router.append(Self.peer(links: [1, 2]), allowedIPs: try Self.prefixes("10.0.0.0/8"))
        router.append(Self.peer(links: [3]), allowedIPs: try Self.prefixes("10.3.0.0/24"))
        router.append(Self.peer(links: []), allowedIPs: try Self.prefixes("10.4.0.0/16"))
        router.append(Self.peer(links: [], hasSession: false), allowedIPs: try Self.prefixes("10.5.0.0/16"))
        return router
    }

    @Test func theLongestPrefixPicksThePeer() throws {
        let router = try hub()
        let local: [UInt8] = [192, 168, 1, 1]
        #expect(try route(router, Self.udp(from: local, to: [10, 3, 0, 7])) == .link(3, peer: 1))
        guard case .link(let key, let peer) = try route(router, Self.udp(from: local, to: [10, 3, 1, 7])) else {
            Issue.record("10.3.1.7 is the wide peer's")
            return
        }
        #expect(peer == 0 && [1, 2].contains(key))
        #expect(try route(router, Self.udp(from: local, to: [192, 168, 9, 9])) == .drop(.noRoute))
    }

    @Test func eachFlowKeepsToOneLinkAndFlowsSpread() throws {
        let router = try hub()
        var used: Set<UInt64> = []
        for port in UInt16(40000)..<40064 {
            let bytes = Self.udp(from: [192, 168, 1, 1], to: [10, 9, 0, 1], sourcePort: port)
            let first = try route(router, bytes)
            for _ in 0..<3 { #expect(try route(router, bytes) == first) }
            if case .link(let key, _) = first { used.insert(key) }
        }
        #expect(used == [1, 2])
    }

    @Test func peersWithoutPlaneLinksGoToTheLoopOrAreDropped() throws {
        let router = try hub()
        let bytes = Self.udp(from: [192, 168, 1, 1], to: [10, 4, 0, 1])
        let packet = try #require(IPPacket(bytes))
        #expect(try route(router, bytes) == .loop(peer: 2, flowHash: packet.flowHash(bytes)))
        #expect(try route(router, Self.udp(from: [192, 168, 1, 1], to: [10, 5, 0, 1])) == .drop(.noSession))
    }

    @Test func linkScopedPacketsGoNowhere() throws {
        var router = PacketRouter()
        router.append(Self.peer(links: [1]), allowedIPs: try Self.prefixes("0.0.0.0/0"))
        // IGMP to 224.0.0.22: link-scoped multicast, never for a peer even with a default route.
        var igmp: [UInt8] = [0x46, 0, 0, 32, 0, 0, 0x40, 0, 1, 2, 0, 0, 10, 0, 0, 1, 224, 0, 0, 22, 0x94, 4, 0, 0]
        igmp += [0x22, 0, 0, 0, 0, 0, 0, 0]
        #expect(try route(router, igmp) == .drop(.linkScoped))
    }

    @Test func onlyTheLongestPrefixOwnerMaySendFromAnAddress() throws {
        let router = try hub()
        #expect(router.mayWrite(source: [10, 3, 0, 5], from: 1))
        #expect(!router.mayWrite(source: [10, 3, 0, 5], from: 0))  // the /8 peer spoofing the /24's host
        #expect(router.mayWrite(source: [10, 9, 0, 5], from: 0))
        #expect(!router.mayWrite(source: [192, 168, 0, 5], from: 0))
        #expect(!router.mayWrite(source: [10, 3, 0, 5], from: PacketRouter.noPeer))
    }

    /// When a reload removes a peer, the next one takes its index; the removed peer's links
    /// (still delivering a last record) must then own no source, not the newcomer's.
    @Test func aRemovedPeersLinksOwnNoSourceAfterAReload() throws {
        var before = PacketRouter()
        before.append(Self.peer(links: [1, 2]), allowedIPs: try Self.prefixes("10.1.0.0/16"))
        before.append(Self.peer(links: [3]), allowedIPs: try Self.prefixes("10.2.0.0/16"))
        #expect([1, 2, 3].map { before.owner(ofLink: $0) } == [0, 0, 1])
        var after = PacketRouter()
        after.append(Self.peer(links: [3]), allowedIPs: try Self.prefixes("10.2.0.0/16"))
        #expect(after.owner(ofLink: 3) == 0)
        #expect(after.owner(ofLink: 1) == PacketRouter.noPeer)
        #expect(!after.mayWrite(source: [10, 2, 0, 1], from: after.owner(ofLink: 1)))
    }

    /// A link event changes one peer's entry in place; the table and the other peers stay.
    @Test func oneUpdatedPeerMovesItsLinksAndNothingElse() throws {
        var router = try hub()
        router.update(Self.peer(links: [7]), at: 1)  // office: link 3 went down, link 7 came up
        #expect(try route(router, Self.udp(from: [192, 168, 1, 1], to: [10, 3, 0, 7])) == .link(7, peer: 1))
        #expect(router.owner(ofLink: 3) == PacketRouter.noPeer)
        #expect(router.owner(ofLink: 7) == 1 && router.owner(ofLink: 1) == 0)
        router.update(Self.peer(links: [], hasSession: false), at: 1)
        #expect(try route(router, Self.udp(from: [192, 168, 1, 1], to: [10, 3, 0, 7])) == .drop(.noSession))
        // Out of range: nothing changes.
        router.update(Self.peer(links: [9]), at: 99)
        #expect(router.owner(ofLink: 9) == PacketRouter.noPeer && router.peers.count == 4)
    }

    @Test func retiringLinksOwnSourcesButCarryNothingNew() throws {
        var router = PacketRouter()
        router.append(Self.peer(links: [2], allLinks: [1, 2]), allowedIPs: try Self.prefixes("10.1.0.0/16"))
        #expect(router.owner(ofLink: 1) == 0)
        for port in UInt16(1)..<32 {
            #expect(try route(router, Self.udp(from: [192, 168, 0, 1], to: [10, 1, 0, 1], sourcePort: port)) == .link(2, peer: 0))
        }
    }

    @Test func aBackloggedLinkPausesTheTunUntilItDrains() {
        var backlog = LinkBacklog()
        #expect(backlog.readsTun)
        var changes: [Bool?] = []
        changes.append(backlog.note(unsent: LinkBacklog.highWater, on: 1))  // at the mark: not above
        changes.append(backlog.note(unsent: LinkBacklog.highWater + 1, on: 1))
        changes.append(backlog.note(unsent: LinkBacklog.highWater + 1, on: 2))
        #expect(changes == [nil, true, true])
        #expect(!backlog.readsTun)
        // Hysteresis: below high water is not enough, below low water is.
        let stillAbove = backlog.note(unsent: LinkBacklog.lowWater + 1, on: 1)
        let drained = backlog.note(unsent: LinkBacklog.lowWater, on: 1)
        #expect(stillAbove == nil && drained == false)
        #expect(!backlog.readsTun)
        let removed = backlog.remove(2), removedAgain = backlog.remove(2)
        #expect(removed && !removedAgain)
        #expect(backlog.readsTun)
    }
}
