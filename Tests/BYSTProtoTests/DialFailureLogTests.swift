import BYSTProto
import Testing

/// What a peer's failing dials write to the log: each cause once per episode, summaries at
/// their interval, one line on recovery, nothing for quiet failures.
@Suite struct DialFailureLogTests {
    static let second: UInt64 = 1_000_000_000
    /// 2025-03-01T12:00:00Z.
    static let start: UInt64 = 1_740_830_400 * second
    let dns = DialFailureCause.nameNotResolved(host: "proxy.invalid", hop: .proxy)
    let refused = DialFailureCause.refused(address: "127.0.0.1:7000", hop: .endpoint)

    func at(_ seconds: Double) -> UInt64 { Self.start + UInt64(seconds * 1e9) }

    @Test func theFirstFailureIsLoggedWithItsCauseAndRepeatsAreNot() {
        var log = DialFailureLog(summaryInterval: 300 * Self.second)
        let first = log.failed(dns, now: at(0))
        #expect(first == .init(level: .info, message: "dial failed: name not resolved: proxy.invalid (the proxy)"))
        // 30 attempts of 4 links in 10 s, the example: nothing more.
        for attempt in 1..<30 { #expect(log.failed(dns, now: at(Double(attempt) / 3)) == nil) }
        #expect(log.last == .init(cause: dns, at: at(29.0 / 3), attempts: 30))
        #expect(log.isFailing)
    }

    @Test func aNewCauseIsLoggedOnceAndAlternatingCausesDoNotFlipFlop() {
        var log = DialFailureLog()
        #expect(log.failed(dns, now: at(0)) != nil)
        let change = log.failed(refused, now: at(1))
        #expect(change?.message == "dial failed, new cause: connection refused by 127.0.0.1:7000 (2 attempts since 12:00:00)")
        for attempt in 2..<20 { #expect(log.failed(attempt.isMultiple(of: 2) ? dns : refused, now: at(Double(attempt))) == nil) }
    }

    @Test func aSummaryComesEveryIntervalWhileTheFailureLasts() {
        var log = DialFailureLog(summaryInterval: 300 * Self.second)
        _ = log.failed(refused, now: at(0))
        #expect(log.failed(refused, now: at(299)) == nil)
        let summary = log.failed(refused, now: at(300))
        #expect(summary?.message == "still failing: connection refused by 127.0.0.1:7000 (3 attempts since 12:00:00)")
        #expect(log.failed(refused, now: at(301)) == nil)
        #expect(log.failed(refused, now: at(599)) == nil)
        #expect(log.failed(refused, now: at(600)) != nil)
    }

    @Test func recoveryEndsTheEpisodeWithOneLineAndKeepsTheLastFailure() {
        var log = DialFailureLog()
        #expect(log.succeeded(now: at(0)) == nil, "no failure, nothing to say")
        _ = log.failed(refused, now: at(0))
        _ = log.failed(refused, now: at(5))
        let up = log.succeeded(now: at(7))
        #expect(up == .init(level: .info, message: "dial succeeded after 2 failed attempts (failing since 12:00:00)"))
        #expect(log.succeeded(now: at(8)) == nil, "a second link up is not news")
        #expect(!log.isFailing)
        #expect(log.last?.cause == refused)
        // A new episode logs its cause again, even the same one.
        #expect(log.failed(refused, now: at(20))?.message == "dial failed: connection refused by 127.0.0.1:7000")
    }

    @Test func keyAndCredentialProblemsAreWarnings() {
        for cause: DialFailureCause in [.hubRefusedKey, .proxyAuthRequired(status: 407), .proxyForbidden(connect: false),
                                        .closedDuringHandshake, .tlsFailed(reason: "pin")] {
            var log = DialFailureLog()
            #expect(log.failed(cause, now: at(0))?.level == .warning, "\(cause)")
        }
        var log = DialFailureLog()
        #expect(log.failed(.timedOut(address: "192.0.2.1:443", hop: .endpoint), now: at(0))?.level == .info)
    }

    @Test func quietFailuresCountButAreNotAnnounced() {
        var log = DialFailureLog()
        #expect(log.failed(.transportNotPassing(mode: "duplex"), now: at(0), quietly: true) == nil)
        #expect(log.failed(.transportNotPassing(mode: "websocket"), now: at(3), quietly: true) == nil)
        // Auto ran out of modes: the next failure is news, and the count includes the quiet ones.
        #expect(log.failed(.httpStatus(400, reason: "Bad Request"), now: at(6))?.message.hasPrefix("dial failed: HTTP 400") == true)
        #expect(log.succeeded(now: at(9))?.message.hasPrefix("dial succeeded after 3 failed attempts") == true)
    }

    /// Auto found its mode after quiet failures only: nothing was announced, so no recovery line.
    @Test func recoveryFromQuietFailuresOnlyIsNotAnnounced() {
        var log = DialFailureLog()
        #expect(log.failed(.transportNotPassing(mode: "duplex"), now: at(0), quietly: true) == nil)
        #expect(log.succeeded(now: at(3)) == nil)
        #expect(log.last?.cause == .transportNotPassing(mode: "duplex"))
    }

    @Test func causesThatCarryTextCannotGrowTheLogWithoutBound() {
        var log = DialFailureLog()
        var lines = 0
        for attempt in 0..<100 where log.failed(.other("error \(attempt)"), now: at(Double(attempt))) != nil { lines += 1 }
        #expect(lines == DialFailureLog.maxCausesPerEpisode)
    }

    @Test func aWallClockSetBackDelaysTheSummaryInsteadOfTrapping() {
        var log = DialFailureLog(summaryInterval: 300 * Self.second)
        _ = log.failed(refused, now: at(1000))
        #expect(log.failed(refused, now: at(10)) == nil)
        #expect(log.failed(refused, now: at(1300)) != nil)
    }

    @Test func refusalCodesFollowTheStatus() {
        #expect(BYSTRefusal(status: 404) == .notFound)
        #expect(BYSTRefusal(status: 431) == .tooLarge)
        #expect(BYSTRefusal(status: 429) == .rateLimited)
        #expect(BYSTRefusal(status: 400) == .badRequest)
        #expect(BYSTRefusal(status: 505) == .badRequest)
        #expect(BYSTRefusal.unknownKey.rawValue == "unknown-key")
    }

    @Test func modeIndependentCausesDoNotMoveAuto() {
        #expect(dns.isIndependentOfHTTPMode)
        #expect(DialFailureCause.hubRefusedKey.isIndependentOfHTTPMode)
        #expect(DialFailureCause.proxyAuthRequired(status: 407).isIndependentOfHTTPMode)
        #expect(!DialFailureCause.transportNotPassing(mode: "duplex").isIndependentOfHTTPMode)
        #expect(!DialFailureCause.proxyForbidden(connect: false).isIndependentOfHTTPMode)
        // tinyproxy drops Upgrade: the hub refuses the plain GET, and auto must move on.
        #expect(!DialFailureCause.hubRefused(code: "bad-request", status: 400).isIndependentOfHTTPMode)
        #expect(DialFailureCause.hubRefused(code: "handshake-failed", status: 403).isIndependentOfHTTPMode)
    }
}
