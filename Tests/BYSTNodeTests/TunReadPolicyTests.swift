import Testing
@testable import BYSTNode

/// How much the data plane reads per TUN wake (TunReadPolicy).
@Suite struct TunReadPolicyTests {
    @Test func onlyCloseWakesLookForABacklog() {
        let limit = TunReadPolicy.backlogLookNanoseconds
        #expect(TunReadPolicy.wakeShouldLookForBacklog(sincePreviousWake: 20_000))
        #expect(TunReadPolicy.wakeShouldLookForBacklog(sincePreviousWake: limit - 1))
        #expect(!TunReadPolicy.wakeShouldLookForBacklog(sincePreviousWake: limit))
        #expect(!TunReadPolicy.wakeShouldLookForBacklog(sincePreviousWake: 20_000_000))
    }
}

/// When the data plane reads the TUN right after a write to it.
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
