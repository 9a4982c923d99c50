import Testing
@testable import BYSTNode

/// When TUN reading moves between the event loop and the reader thread (TunReader).
@Suite struct TunReadPolicyTests {
    @Test func aLoopCycleFallsBehindOnABacklogOrASuperPacket() {
        #expect(!TunReadPolicy.loopCycleFellBehind(packets: 1, bytes: 84))
        #expect(!TunReadPolicy.loopCycleFellBehind(packets: 3, bytes: 3 * 1500))
        #expect(TunReadPolicy.loopCycleFellBehind(packets: 4, bytes: 4 * 60))
        #expect(TunReadPolicy.loopCycleFellBehind(packets: 1, bytes: 64 * 1024))
    }

    @Test func onlyCloseCyclesLookForABacklog() {
        let limit = TunReadPolicy.backlogLookNanoseconds
        #expect(TunReadPolicy.loopCycleShouldLookForBacklog(sincePreviousCycle: 20_000))
        #expect(TunReadPolicy.loopCycleShouldLookForBacklog(sincePreviousCycle: limit - 1))
        #expect(!TunReadPolicy.loopCycleShouldLookForBacklog(sincePreviousCycle: limit))
        #expect(!TunReadPolicy.loopCycleShouldLookForBacklog(sincePreviousCycle: 20_000_000))
    }

    /// Feeds `count` batches; how many of them made the thread hand reading back.
    private func handBacks(_ policy: inout TunReadPolicy, batches count: Int, packets: Int = 1, bytes: Int = 84) -> Int {
        (0..<count).filter { _ in policy.threadShouldHandBack(afterBatchOf: packets, bytes: bytes) }.count
    }

    @Test func theThreadHandsBackAfterAStreakOfSingleSmallPackets() {
        var policy = TunReadPolicy()
        let streak = TunReadPolicy.threadLightStreak
        let early = handBacks(&policy, batches: streak - 1)
        #expect(early == 0)
        let atStreak = handBacks(&policy, batches: 1)
        #expect(atStreak == 1)
        // The streak starts over after a hand-back.
        let afterwards = handBacks(&policy, batches: streak - 1)
        #expect(afterwards == 0)
    }

    @Test func bulkBatchesOrIdlingBreakTheStreak() {
        var policy = TunReadPolicy()
        let streak = TunReadPolicy.threadLightStreak
        // A batch of several packets, or one super-packet: bulk traffic, reading stays.
        var handed = handBacks(&policy, batches: streak - 1)
        handed += handBacks(&policy, batches: 1, packets: 5, bytes: 5 * 1500)
        handed += handBacks(&policy, batches: streak - 1)
        handed += handBacks(&policy, batches: 1, bytes: 65536)
        handed += handBacks(&policy, batches: streak - 1)
        #expect(handed == 0)
        // Idling hands back on its own (the thread's poll timed out); the streak starts over.
        policy.threadWasIdle()
        let afterIdle = handBacks(&policy, batches: streak - 1)
        #expect(afterIdle == 0)
    }
}

/// When the TUN is read right after a write to it (TunPump).
@Suite struct ReadAfterWritePolicyTests {
    /// Runs `writes` writes, each answered or not; how many were followed by a read.
    private func reads(_ policy: inout ReadAfterWritePolicy, writes: Int, answered: Bool) -> Int {
        (0..<writes).filter { _ in
            guard policy.shouldRead() else { return false }
            policy.record(found: answered)
            return true
        }.count
    }

    @Test func readsAfterEveryWriteWhileWritesAreAnswered() {
        var policy = ReadAfterWritePolicy()
        let answered = reads(&policy, writes: 200, answered: true)
        #expect(answered == 200)
    }

    @Test func backsOffAfterEmptyReadsAndComesBackOnAnAnswer() {
        var policy = ReadAfterWritePolicy()
        let misses = ReadAfterWritePolicy.missesBeforeBackingOff, every = ReadAfterWritePolicy.retryEvery
        let before = reads(&policy, writes: misses, answered: false)
        #expect(before == misses)
        // Backed off: one read per `every` writes.
        let backedOff = reads(&policy, writes: every * 10, answered: false)
        #expect(backedOff == 10)
        // The next retry finds an answer: every write reads again.
        let retry = reads(&policy, writes: every, answered: true)
        #expect(retry == 1)
        let after = reads(&policy, writes: 50, answered: true)
        #expect(after == 50)
    }
}
