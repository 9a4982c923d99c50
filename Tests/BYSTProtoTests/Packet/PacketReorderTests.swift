@testable import BYSTProto
import Testing

/// The receiver's reordering of striped packets (PROTOCOL.md §5.4, "Packet striping"): what is
/// written, in which order, and when a gap is given up.
@Suite struct PacketReorderTests {
    /// Feeds packets (their numbers are their payload) and returns what would be written.
    struct Harness {
        var reorder: PacketReorder<UInt64>
        var written: [UInt64] = []

        init(_ limits: PacketReorder<UInt64>.Limits = .standard) { reorder = PacketReorder(limits: limits) }

        mutating func receive(_ seqs: UInt64..., size: Int = 1000, at now: Nanoseconds = 0) {
            for seq in seqs {
                if reorder.receive(seq: seq, size: size, now: now, copy: { seq }) { written.append(seq) }
                drain()
            }
        }

        mutating func expire(at now: Nanoseconds) {
            reorder.expire(now: now)
            drain()
        }

        private mutating func drain() { while let packet = reorder.popReady() { written.append(packet) } }
    }

    static let ms: Nanoseconds = 1_000_000

    @Test func inOrderPacketsGoOutAtOnceAndNothingIsHeld() {
        var h = Harness()
        h.receive(100, 101, 102, 103)
        #expect(h.written == [100, 101, 102, 103])
        #expect(h.reorder.holding == 0)
        #expect(h.reorder.deadline == nil)
        #expect(h.reorder.counts == .init())
    }

    @Test func aGapFilledLateReleasesWhatWaitedInOrder() {
        var h = Harness()
        h.receive(0, 2, 3, 5, at: 1 * Self.ms)
        #expect(h.written == [0])
        #expect(h.reorder.holding == 3)
        #expect(h.reorder.deadline == 51 * Self.ms)
        h.receive(1, at: 2 * Self.ms)
        #expect(h.written == [0, 1, 2, 3])
        // 5 still waits for 4, since it arrived (not since the first gap).
        #expect(h.reorder.deadline == 51 * Self.ms)
        h.receive(4, at: 3 * Self.ms)
        #expect(h.written == [0, 1, 2, 3, 4, 5])
        #expect(h.reorder.deadline == nil)
        #expect(h.reorder.counts.held == 3)
        #expect(h.reorder.counts.skipped == 0)
    }

    @Test func aGapIsGivenUpAfterTheHoldTimeAndItsPacketThenGoesOutLate() {
        var h = Harness(.init(maxPackets: 1024, maxBytes: 1 << 30, holdTime: 10 * Self.ms))
        h.receive(10, at: 0)
        h.receive(12, 13, at: 1 * Self.ms)
        h.receive(15, at: 5 * Self.ms)
        h.expire(at: 10 * Self.ms)
        #expect(h.written == [10])
        h.expire(at: 11 * Self.ms)
        // 11 is given up; 12 and 13 go; 15 has waited only 6 ms.
        #expect(h.written == [10, 12, 13])
        #expect(h.reorder.deadline == 15 * Self.ms)
        h.receive(11, at: 12 * Self.ms)
        #expect(h.written == [10, 12, 13, 11])
        #expect(h.reorder.counts.late == 1)
        h.expire(at: 15 * Self.ms)
        #expect(h.written == [10, 12, 13, 11, 15])
        #expect(h.reorder.counts.skipped == 2)
        #expect(h.reorder.deadline == nil)
        // The sequence goes on after the skipped gap.
        h.receive(16, at: 16 * Self.ms)
        #expect(h.written.last == 16)
    }

    @Test func overflowingThePacketLimitReleasesTheOldestInOrder() {
        var h = Harness(.init(maxPackets: 4, maxBytes: 1 << 30, holdTime: 10 * Self.ms))
        h.receive(0, 2, 3, 4)
        #expect(h.written == [0])
        // 6 does not fit the window 1…4: 1 is given up, 2…4 go, 6 waits for 5.
        h.receive(6)
        #expect(h.written == [0, 2, 3, 4])
        #expect(h.reorder.holding == 1)
        // Far ahead: everything held goes, and the window moves up to it.
        h.receive(100)
        #expect(h.written == [0, 2, 3, 4, 6])
        h.receive(97, 98, 99)
        #expect(h.written == [0, 2, 3, 4, 6, 97, 98, 99, 100])
        #expect(h.reorder.holding == 0)
    }

    @Test func overflowingTheByteLimitReleasesTheOldestInOrder() {
        var h = Harness(.init(maxPackets: 1024, maxBytes: 3000, holdTime: 10 * Self.ms))
        h.receive(0)
        h.receive(2, 3, 4, size: 1000)
        #expect(h.written == [0])
        h.receive(6, size: 1000)
        #expect(h.written == [0, 2, 3, 4])
        #expect(h.reorder.holding == 1)
        #expect(h.reorder.counts.skipped == 1)
    }

    @Test func aHeldDuplicateIsDropped() {
        var h = Harness()
        h.receive(0, 2, 2, 3, 2)
        #expect(h.reorder.counts.duplicates == 2)
        h.receive(1)
        #expect(h.written == [0, 1, 2, 3])
    }

    @Test func aFarJumpStartsANewSequenceAfterWhatTheOldOneHeld() {
        var h = Harness()
        h.receive(1000, 1002)
        // The sender restarted, its first number drawn at random: far from the old ones.
        h.receive(1 << 40, (1 << 40) + 1)
        #expect(h.written == [1000, 1002, 1 << 40, (1 << 40) + 1])
        #expect(h.reorder.counts.restarts == 1)
        #expect(h.reorder.holding == 0)
        // And far below too.
        h.receive(7, 9, 8)
        #expect(h.written.suffix(3) == [7, 8, 9])
        #expect(h.reorder.counts.restarts == 2)
        // Merely behind (a gap given up a while ago): late, not a restart.
        h.receive(3)
        #expect(h.written.last == 3)
        #expect(h.reorder.counts.late == 1)
    }

    @Test func numbersWrapAroundTheTopOfTheRange() {
        var h = Harness()
        h.receive(.max - 1, 0, .max)
        #expect(h.written == [.max - 1, .max, 0])
    }

    @Test func releaseAllLetsEverythingGoInOrder() {
        var h = Harness()
        h.receive(0, 5, 3, 9)
        h.reorder.releaseAll()
        while let packet = h.reorder.popReady() { h.written.append(packet) }
        #expect(h.written == [0, 3, 5, 9])
        #expect(h.reorder.deadline == nil)
    }
}
