import Testing
@testable import BYSTProto

/// Admission of handshake attempts before any cryptography: the token bucket, the
/// per-source rate limiter with its bounded table, and the pending-handshake table.
struct HandshakeAdmissionTests {
    static let second: Nanoseconds = 1_000_000_000

    func source(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> HandshakeSource {
        HandshakeSource(addressBytes: [a, b, c, d])!
    }

    /// How many of `count` events at `now` the bucket admits.
    func taken(_ bucket: inout TokenBucket, _ count: Int, now: Nanoseconds) -> Int {
        (0..<count).reduce(0) { total, _ in total + (bucket.take(now: now) ? 1 : 0) }
    }

    func admissions(_ limiter: inout HandshakeRateLimiter, _ source: HandshakeSource, _ count: Int, now: Nanoseconds) -> Int {
        (0..<count).reduce(0) { total, _ in total + (limiter.admit(source, now: now) ? 1 : 0) }
    }

    @Test func tokenBucketAdmitsTheBurstThenTheRate() {
        var bucket = TokenBucket(rate: 10, burst: 5, now: 0)
        #expect(taken(&bucket, 6, now: 0) == 5)
        #expect(!bucket.isFull(now: 0))
        // One event's worth every 100 ms.
        #expect(taken(&bucket, 1, now: 99_000_000) == 0)
        #expect(taken(&bucket, 2, now: 100_000_000) == 1)
        // Refilled, but never beyond the burst.
        #expect(bucket.isFull(now: 100 * Self.second))
        #expect(taken(&bucket, 6, now: 100 * Self.second) == 5)
        // Time going backwards adds nothing.
        #expect(taken(&bucket, 1, now: 50 * Self.second) == 0)
    }

    @Test func sourcesAreIPv4AddressesAndIPv6Slash64s() throws {
        #expect(source(192, 0, 2, 7).description == "192.0.2.7")
        let v6a = try #require(HandshakeSource(addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 1, count: 8)))
        let v6b = try #require(HandshakeSource(addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 9, count: 8)))
        #expect(v6a == v6b)
        #expect(v6a.description == "2001:db8:0:1::/64")
        let mapped = try #require(HandshakeSource(addressBytes: [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 7]))
        #expect(mapped == source(192, 0, 2, 7))
        #expect(HandshakeSource(addressBytes: [1, 2, 3]) == nil)
        // The allocation-free forms the accept thread uses agree.
        #expect(HandshakeSource(ipv4: 0xC000_0207) == source(192, 0, 2, 7))
        #expect(HandshakeSource(ipv6High: 0x2001_0db8_0000_0001, low: 42) == v6a)
        #expect(HandshakeSource(ipv6High: 0, low: 0xFFFF_C000_0207) == source(192, 0, 2, 7))
    }

    @Test func eachSourceHasItsOwnRate() {
        var limiter = HandshakeRateLimiter(configuration: .init(rate: 20, burst: 10, maxSources: 100), now: 0)
        let flooder = source(10, 0, 0, 66)
        let peer = source(10, 0, 0, 2)
        var admitted = 0
        // The flooder tries 5,000 times in one second: the burst and 20/s get through.
        for index in 0..<5000 where limiter.admit(flooder, now: UInt64(index) * 200_000) { admitted += 1 }
        #expect(admitted >= 10 && admitted <= 10 + 20 + 1, "admitted \(admitted)")
        // A peer at another address is not affected.
        #expect(admissions(&limiter, peer, 10, now: Self.second) == 10)
        // rate 0: off.
        var off = HandshakeRateLimiter(configuration: .init(rate: 0, burst: 1, maxSources: 16), now: 0)
        #expect(admissions(&off, flooder, 1000, now: 0) == 1000)
        #expect(off.trackedSources == 0)
    }

    @Test func theTableStaysBoundedUnderADistributedFlood() {
        let config = HandshakeRateLimiter.Configuration(rate: 10, burst: 2, maxSources: 64)
        var limiter = HandshakeRateLimiter(configuration: config, now: 0)
        let known = source(10, 9, 9, 9)
        #expect(admissions(&limiter, known, 1, now: 0) == 1)
        // 100,000 sources in one second, each trying twice.
        var admitted = 0
        var largestTable = 0
        for index in 0..<100_000 {
            let now = UInt64(index) * 10_000
            let from = source(10, UInt8(index >> 16 & 0xFF), UInt8(index >> 8 & 0xFF), UInt8(index & 0xFF))
            if limiter.admit(from, now: now) { admitted += 1 }
            if limiter.admit(from, now: now) { admitted += 1 }
            largestTable = max(largestTable, limiter.trackedSources)
        }
        #expect(largestTable == config.maxSources)
        // Newcomers beyond the table share one bucket: about the table's bursts plus one rate.
        #expect(admitted <= 64 * 2 + 2 + 10 + 1, "admitted \(admitted)")
        // The source that was known keeps its own bucket meanwhile.
        #expect(admissions(&limiter, known, 1, now: Self.second) == 1)
        // Once idle buckets refilled, they are swept and new sources get their own again.
        let later = 10 * Self.second
        let fresh = source(172, 16, 0, 1)
        #expect(admissions(&limiter, fresh, 3, now: later) == 2)
        #expect(limiter.trackedSources <= config.maxSources)
    }

    func decisions(_ policy: inout AcceptPolicy, _ source: HandshakeSource, _ count: Int, inFlight: Int = 0,
                   now: Nanoseconds) -> [AcceptPolicy.Verdict] {
        (0..<count).map { _ in policy.decide(source, inFlight: inFlight, now: now) }
    }

    @Test func unknownSourcesShareAGlobalRateWhileKnownPeersSkipIt() {
        let perSource = HandshakeRateLimiter.Configuration(rate: 10, burst: 10, maxSources: 1000)
        var policy = AcceptPolicy(configuration: .init(perSource: perSource, acceptRate: 100, acceptBurst: 20), now: 0)
        // A distributed flood: 100 sources, each within its own rate, 5 connections each.
        var verdicts: [AcceptPolicy.Verdict] = []
        for index in 0..<100 { verdicts += decisions(&policy, source(10, 1, 0, UInt8(index)), 5, now: 0) }
        #expect(verdicts.filter { $0 == .admit }.count == 20)
        #expect(verdicts.filter { $0 == .overloaded }.count == 480)
        // A peer that completed a handshake before is admitted anyway (its own rate still holds).
        let peer = source(192, 168, 1, 2)
        policy.trust(peer, now: 0)
        let known = decisions(&policy, peer, 12, now: 0)
        #expect(known.prefix(10).allSatisfy { $0 == .admit } && known.suffix(2).allSatisfy { $0 == .rateLimited })
        // Once its trust window is over, it is a stranger again.
        let later = 601 * Self.second
        #expect(policy.decide(peer, inFlight: 0, now: later) == .admit)  // the global bucket refilled
        let drained = decisions(&policy, source(10, 2, 0, 1), 10, now: later) + decisions(&policy, source(10, 2, 0, 2), 10, now: later)
        #expect(drained.filter { $0 == .admit }.count == 19)
        #expect(policy.decide(peer, inFlight: 0, now: later) == .overloaded)
    }

    @Test func anEventLoopBehindRefusesStrangersButNotKnownPeers() {
        let perSource = HandshakeRateLimiter.Configuration(rate: 0, burst: 1, maxSources: 16)
        var policy = AcceptPolicy(configuration: .init(perSource: perSource, acceptRate: 0, acceptBurst: 1, maxInFlight: 64,
                                                       trustedCapacity: 64), now: 0)
        #expect(decisions(&policy, source(10, 0, 0, 1), 100, inFlight: 63, now: 0).allSatisfy { $0 == .admit })
        #expect(policy.decide(source(10, 0, 0, 1), inFlight: 64, now: 0) == .overloaded)
        #expect(policy.decide(source(10, 0, 0, 1), inFlight: 0, loopLag: .milliseconds(19), now: 0) == .admit)
        #expect(policy.decide(source(10, 0, 0, 1), inFlight: 0, loopLag: .milliseconds(20), now: 0) == .overloaded)
        #expect(policy.decide(source(10, 0, 0, 2), inFlight: 0, loopLag: .seconds(5), now: 0) == .overloaded)
        policy.trust(source(10, 0, 0, 2), now: 0)
        #expect(policy.decide(source(10, 0, 0, 2), inFlight: 1000, loopLag: .seconds(5), now: 0) == .admit)
        // The trusted table stays bounded.
        for index in 0..<1000 { policy.trust(source(10, 3, UInt8(index >> 8), UInt8(index & 0xFF)), now: UInt64(index)) }
        #expect(policy.trustedSources == policy.configuration.trustedCapacity)
    }

    @Test func pendingTableEvictsTheOldestAndForgetsSettledOnes() {
        var table = PendingHandshakeTable<Int>(capacity: 3)
        var evicted: [[Int]] = []
        for id in 1...4 { evicted.append(table.admit(id)) }
        #expect(evicted == [[], [], [], [1]])
        table.remove(2)
        #expect(table.count == 2)
        evicted = [table.admit(5), table.admit(6)]
        #expect(evicted == [[], [3]])
        #expect(table.contains(4) && table.contains(5) && table.contains(6))
        // Re-admitting moves an entry to the back.
        evicted = [table.admit(4), table.admit(7)]
        #expect(evicted == [[], [5]])
        // Heavy churn: removed entries do not pile up, the bound holds.
        var mostEvicted = 0
        var largest = 0
        for id in 100..<100_000 {
            mostEvicted = max(mostEvicted, table.admit(id).count)
            if id % 3 == 0 { table.remove(id) }
            largest = max(largest, table.count)
        }
        #expect(mostEvicted == 1 && largest == 3)
    }
}
