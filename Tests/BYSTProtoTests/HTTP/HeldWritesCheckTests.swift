import Testing
@testable import BYSTProto

@Suite struct HeldWritesCheckTests {
    static let ms: Nanoseconds = 1_000_000

    @Test func judgesOnThreeSamplesEach() {
        #expect(HeldWritesCheck.samples == 3)
    }

    @Test func heldDuplexPathTriesAndTakesTheWebSocket() {
        var check = HeldWritesCheck()
        // haproxy with its defaults on loopback: connect 0.1 ms, ping and pong each held ≈ 200 ms.
        #expect(check.primarySample(410 * Self.ms, connectTime: Self.ms / 10) == nil)
        #expect(check.primarySample(410 * Self.ms, connectTime: Self.ms / 10) == nil)
        #expect(check.primarySample(402 * Self.ms, connectTime: Self.ms / 10) == .tryAlternative(primaryRTT: 402 * Self.ms))
        #expect(check.isTrying)
        // Samples of other duplex links while the trial is out change nothing.
        #expect(check.primarySample(1 * Self.ms, connectTime: 0) == nil)
        #expect(check.alternativeSample(3 * Self.ms) == nil)
        #expect(check.alternativeSample(3 * Self.ms) == nil)
        #expect(check.alternativeSample(1 * Self.ms) == .useAlternative(primaryRTT: 402 * Self.ms, alternativeRTT: 1 * Self.ms))
        #expect(check.isDecided)
        #expect(check.alternativeSample(1 * Self.ms) == nil)
    }

    @Test func fastPathIsNeverTried() {
        var check = HeldWritesCheck()
        #expect(check.primarySample(2 * Self.ms, connectTime: Self.ms) == nil)
        #expect(check.primarySample(2 * Self.ms, connectTime: Self.ms) == nil)
        #expect(check.primarySample(500 * Self.ms, connectTime: Self.ms) == nil)  // one sample queued behind bulk data
        #expect(check.isDecided)
        #expect(check.primarySample(500 * Self.ms, connectTime: Self.ms) == nil)
    }

    @Test func farHubWithFarFirstHopIsNotTried() {
        // A reverse proxy next to a hub 300 ms away: connect and ping cost the same RTT.
        var check = HeldWritesCheck()
        #expect(check.primarySample(305 * Self.ms, connectTime: 300 * Self.ms) == nil)
        #expect(check.primarySample(305 * Self.ms, connectTime: 300 * Self.ms) == nil)
        #expect(check.primarySample(302 * Self.ms, connectTime: 300 * Self.ms) == nil)
        #expect(check.isDecided)
    }

    @Test func farHubBehindNearProxyIsTriedButKeepsDuplex() {
        // A forward proxy next door, the hub 300 ms away and nothing held: the trial is
        // dialed (connect time says nothing about the far side), the comparison keeps duplex.
        var check = HeldWritesCheck()
        #expect(check.primarySample(301 * Self.ms, connectTime: Self.ms) == nil)
        #expect(check.primarySample(301 * Self.ms, connectTime: Self.ms) == nil)
        #expect(check.primarySample(300 * Self.ms, connectTime: Self.ms) == .tryAlternative(primaryRTT: 300 * Self.ms))
        #expect(check.alternativeSample(310 * Self.ms) == nil)
        #expect(check.alternativeSample(310 * Self.ms) == nil)
        #expect(check.alternativeSample(250 * Self.ms) == .keepPrimary(primaryRTT: 300 * Self.ms, alternativeRTT: 250 * Self.ms))
        #expect(check.isDecided)
    }

    @Test func heldFarPathStillFoundAndWonByMargin() {
        // The hub 300 ms away behind a corking proxy next to it: 300 + ≈ 400 ms held.
        var check = HeldWritesCheck()
        #expect(check.primarySample(720 * Self.ms, connectTime: 300 * Self.ms) == nil)
        #expect(check.primarySample(720 * Self.ms, connectTime: 300 * Self.ms) == nil)
        #expect(check.primarySample(700 * Self.ms, connectTime: 300 * Self.ms) == .tryAlternative(primaryRTT: 700 * Self.ms))
        #expect(check.alternativeSample(302 * Self.ms) == nil)
        #expect(check.alternativeSample(302 * Self.ms) == nil)
        #expect(check.alternativeSample(301 * Self.ms) == .useAlternative(primaryRTT: 700 * Self.ms, alternativeRTT: 301 * Self.ms))
    }

    @Test func slowerAlternativeKeepsDuplex() {
        var check = HeldWritesCheck()
        _ = check.primarySample(400 * Self.ms, connectTime: 0)
        _ = check.primarySample(400 * Self.ms, connectTime: 0)
        #expect(check.primarySample(400 * Self.ms, connectTime: 0) == .tryAlternative(primaryRTT: 400 * Self.ms))
        _ = check.alternativeSample(900 * Self.ms)
        _ = check.alternativeSample(900 * Self.ms)
        #expect(check.alternativeSample(800 * Self.ms) == .keepPrimary(primaryRTT: 400 * Self.ms, alternativeRTT: 800 * Self.ms))
    }

    @Test func failedTrialKeepsDuplexAndResetStartsOver() {
        var check = HeldWritesCheck()
        #expect(check.alternativeFailed() == nil)
        for _ in 0..<HeldWritesCheck.samples { _ = check.primarySample(400 * Self.ms, connectTime: 0) }
        #expect(check.alternativeFailed() == .keepPrimary(primaryRTT: 400 * Self.ms, alternativeRTT: nil))
        #expect(check.isDecided)
        check.reset()
        #expect(!check.isDecided && !check.isTrying)
        _ = check.primarySample(400 * Self.ms, connectTime: 0)
        _ = check.primarySample(400 * Self.ms, connectTime: 0)
        #expect(check.primarySample(400 * Self.ms, connectTime: 0) == .tryAlternative(primaryRTT: 400 * Self.ms))
    }
}
