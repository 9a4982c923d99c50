@testable import BYSTProto
import Testing

/// The sender's choice of link and numbering for striped packets.
@Suite struct PacketStriperTests {
    @Test func numbersFollowEachOtherAndLevelLinksTakeAQuantumEachInTurn() {
        var striper = PacketStriper(firstSequence: 41)
        let links: [UInt64] = [7, 8, 9]
        let per = PacketStriper.quantum / 1000 + 1 // packets until a link has had its quantum
        var picks: [(UInt64, UInt64)] = []
        for _ in 0..<(3 * per + 1) {
            if let pick = striper.pick(among: links, bytes: 1000, queued: { _ in 0 }) { picks.append(pick) }
        }
        #expect(picks.map(\.1) == Array(41..<(41 + UInt64(3 * per + 1))))
        #expect(picks.prefix(per).allSatisfy { $0.0 == 7 })
        #expect(picks.dropFirst(per).prefix(per).allSatisfy { $0.0 == 8 })
        #expect(picks.dropFirst(2 * per).prefix(per).allSatisfy { $0.0 == 9 })
        #expect(picks.last?.0 == 7)
    }

    @Test func theLeastQueuedLinkTakesTheNextQuantum() {
        var striper = PacketStriper(firstSequence: 0)
        let queued: [UInt64: Int] = [1: 500_000, 2: 20_000, 3: 90_000]
        _ = striper.pick(among: [1, 2, 3], bytes: PacketStriper.quantum) { queued[$0] }
        #expect(striper.pick(among: [1, 2, 3], bytes: 1000) { queued[$0] }?.link == 2)
    }

    @Test func backloggedLinksArePassedOver() {
        var striper = PacketStriper(firstSequence: 0)
        let links: [UInt64] = [1, 2, 3]
        var used: Set<UInt64> = []
        for _ in 0..<200 {
            if let pick = striper.pick(among: links, bytes: 1400, queued: { $0 == 2 ? nil : 0 }) { used.insert(pick.link) }
        }
        #expect(used == [1, 3])
        // All backlogged: still sent (the TUN is paused meanwhile), in turn.
        #expect(striper.pick(among: links, bytes: PacketStriper.quantum, queued: { _ in nil }) != nil)
        #expect(striper.pick(among: [], bytes: 1, queued: { _ in 0 }) == nil)
    }
}
