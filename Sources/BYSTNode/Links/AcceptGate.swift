// The accept threads' gate (docs/OPERATIONS.md, "Limits"), before anything is read:
//
//   accepted ─▶ AcceptPolicy: source over handshake_rate? ──────────────▶ rate_limited: reset
//                              known peer (recent handshake)? ───────────▶ admit
//                              unknown sources over accept_rate, or the
//                              event loop behind (64 connections to set
//                              up, or its timers ≥ 20 ms late three
//                              times in a row)? ─────────────────────────▶ overloaded: reset
//                              otherwise ───────────────────────────────▶ admit ─▶ event loop
//
//   event loop, every 50 ms ─▶ how late was this timer? ─▶ loopLag (read by the accept threads)
import BYSTProto
import CoreMetrics
import Glibc
import Logging
import NIOCore
import Synchronization

/// The accept policy (per-source rate, global rate for unknown sources, the hand-off queue
/// to the event loop), shared by every accept thread of a node — one policy, so a source gets
/// its rate once, not once per listener — with its counters and log.
///
/// **Invariants**: thread-safe (a mutex around the policy and the log's bucket, an atomic for
/// the hand-offs in flight); counts every refusal in `byst_handshake_failures_total` (reason
/// `rate_limited` or `overloaded`), `byst_limit_hits_total` (limit `handshake_rate` or
/// `accept_rate`) and `refused`.
final class AcceptGate: Sendable {
    private struct State {
        var policy: AcceptPolicy
        var log: TokenBucket
        var suppressed = 0
    }

    private let state: Mutex<State>
    private let rateLimited: (failures: CoreMetrics.Counter, hits: CoreMetrics.Counter)
    private let overloaded: (failures: CoreMetrics.Counter, hits: CoreMetrics.Counter)
    private let logger: Logger
    private let limits: LimitsConfig
    private let refusedCount = Atomic<Int>(0)
    /// Connections admitted by an accept thread and not yet set up on the event loop.
    private let inFlight = Atomic<Int>(0)
    /// How late the event loop's probe timer ran, in nanoseconds: the least of its last three
    /// runs, so a loop late for 100 ms and more counts, not one preempted once (`probeLoop`).
    private let loopLag = Atomic<UInt64>(0)
    /// The probe's period: lateness is measured against it.
    static let probeInterval: TimeAmount = .milliseconds(50)

    init(limits: LimitsConfig, metrics: NodeMetrics, logger: Logger) {
        let now = Clocks.monotonic()
        state = Mutex(State(policy: AcceptPolicy(configuration: limits.acceptPolicy, now: now),
                            log: TokenBucket(rate: LogLimiter.perSecond, burst: LogLimiter.burst, now: now)))
        rateLimited = (metrics.handshakeFailureCounter(.rateLimited), metrics.limitHitCounter(.handshakeRate))
        overloaded = (metrics.handshakeFailureCounter(.overloaded), metrics.limitHitCounter(.acceptRate))
        self.logger = logger
        self.limits = limits
    }

    /// Connections refused so far (for `byst status`'s `handshake_failures`).
    var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Whether a connection from `source` may go on; counted and logged (rate-limited) if not.
    /// An admitted connection must be reported with `setUp()` once the event loop has it.
    func admit(_ source: HandshakeSource?) -> Bool {
        guard let source else { return true }
        let now = Clocks.monotonic()
        let inFlight = inFlight.load(ordering: .relaxed)
        let lag = Duration.nanoseconds(Int64(clamping: loopLag.load(ordering: .relaxed)))
        let (verdict, logLine, suppressed) = state.withLock { state -> (AcceptPolicy.Verdict, Bool, Int) in
            let verdict = state.policy.decide(source, inFlight: inFlight, loopLag: lag, now: now)
            guard verdict != .admit else { return (verdict, false, 0) }
            guard state.log.take(now: now) else {
                state.suppressed += 1
                return (verdict, false, 0)
            }
            defer { state.suppressed = 0 }
            return (verdict, true, state.suppressed)
        }
        switch verdict {
        case .admit:
            self.inFlight.add(1, ordering: .relaxed)
            return true
        case .rateLimited:
            count(rateLimited)
            if logLine {
                logger.warning("limit handshake_rate: connection from \(source) refused: over handshake_rate (\(limits.handshakeRate)/s, burst \(limits.handshakeBurst))\(Self.note(suppressed))")
            }
        case .overloaded:
            count(overloaded)
            if logLine {
                logger.warning("limit accept_rate: connection from \(source) refused: new sources together over accept_rate (\(limits.acceptRate)/s, burst \(limits.acceptBurst)), or the event loop is behind (\(lag) late)\(Self.note(suppressed))")
            }
        }
        return false
    }

    /// The event loop has set up (or failed to set up) an admitted connection.
    func setUp() { inFlight.subtract(1, ordering: .relaxed) }

    /// Measures the event loop's lateness every `probeInterval` (`LoopLagProbe`): a loop
    /// saturated by strangers' connections shows here first, and the gate turns them away.
    func probeLoop(_ loop: EventLoop) -> LoopLagProbe {
        LoopLagProbe(on: loop, period: Self.probeInterval) { [self] lag in loopLag.store(lag, ordering: .relaxed) }
    }

    /// A handshake from `source` completed: its later connections skip `accept_rate`.
    func trust(_ source: HandshakeSource) {
        let now = Clocks.monotonic()
        state.withLock { $0.policy.trust(source, now: now) }
    }

    private func count(_ counters: (failures: CoreMetrics.Counter, hits: CoreMetrics.Counter)) {
        refusedCount.add(1, ordering: .relaxed)
        counters.failures.increment()
        counters.hits.increment()
    }

    private static func note(_ suppressed: Int) -> String {
        suppressed > 0 ? " (\(suppressed) similar line\(suppressed == 1 ? "" : "s") suppressed)" : ""
    }

    /// accept failed for lack of descriptors or memory (logged, rate-limited with the rest).
    func acceptFailed(_ code: Int32) {
        let now = Clocks.monotonic()
        guard state.withLock({ $0.log.take(now: now) }) else { return }
        logger.warning("link listener: accept failed: \(String(cString: strerror(code))); retrying in 10 ms")
    }
}
