import BYSTProto
import Testing
@testable import BYSTNode

/// Source ownership on the data plane across a reload (issue 21 point 5): the plane checks a
/// link's packets against the peer at the link's index in the published table. When a reload
/// removes a peer, the next peer takes its index; the removed peer's links (still delivering
/// a last record or two) must then own no source, not the newcomer's.
struct DataPlaneRoutesTests {
    private func table(_ peers: [[UInt64]]) -> DataPlaneRoutes {
        var table = DataPlaneRoutes()
        for links in peers { table.append(DataPlaneRoutes.Peer(sendLinks: links, allLinks: links, takesOffloadPackets: false)) }
        return table
    }

    @Test func aRemovedPeersLinksOwnNoSourceAfterAReload() {
        let before = table([[1, 2], [3]])  // peer 0 (links 1, 2), peer 1 (link 3)
        #expect([1, 2, 3].map { before.owner(ofLink: $0) } == [0, 0, 1])
        let after = table([[3]])  // peer 0 removed: peer 1 is now at index 0
        #expect(after.owner(ofLink: 3) == 0)
        #expect(after.owner(ofLink: 1) == DataPlaneLink.noPeer)
        #expect(after.owner(ofLink: 2) == DataPlaneLink.noPeer)
    }
}
