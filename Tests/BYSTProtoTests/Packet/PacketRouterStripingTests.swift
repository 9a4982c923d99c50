import Testing
@testable import BYSTProto

/// `PacketRouter` with packet striping: a peer with two or more striping links here has every
/// packet striped; with fewer, flows are pinned as before.
@Suite struct PacketRouterStripingTests {
    func router(stripeLinks: [UInt64], sendLinks: [UInt64] = [1, 2, 3]) throws -> PacketRouter {
        var router = PacketRouter()
        let peer = PacketRouter.Peer(sendLinks: sendLinks, allLinks: sendLinks, hasSession: true, takesOffloadPackets: false,
                                     maxPayload: 65535, stripeLinks: stripeLinks)
        router.append(peer, allowedIPs: [try #require(IPPrefix("10.0.0.0/8"))])
        return router
    }

    func route(_ router: PacketRouter, port: UInt16) throws -> PacketRouter.Decision {
        let bytes = PacketRouterTests.udp(from: [192, 168, 0, 1], to: [10, 1, 2, 3], sourcePort: port)
        return router.route(try #require(IPPacket(bytes)), in: bytes)
    }

    @Test func twoStripingLinksStripeEveryFlow() throws {
        let router = try router(stripeLinks: [1, 2])
        for port in UInt16(1000)..<1010 { #expect(try route(router, port: port) == .stripe(peer: 0)) }
        #expect(router.peers[0].stripes)
    }

    @Test func oneStripingLinkOrNonePinsFlowsAsBefore() throws {
        for stripeLinks: [UInt64] in [[], [2]] {
            let router = try router(stripeLinks: stripeLinks)
            var links: Set<UInt64> = []
            for port in UInt16(1000)..<1100 {
                guard case .link(let key, peer: 0) = try route(router, port: port) else { Issue.record("not pinned"); continue }
                links.insert(key)
            }
            #expect(links == [1, 2, 3])
        }
    }
}
