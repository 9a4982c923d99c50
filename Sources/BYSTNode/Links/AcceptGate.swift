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
//   (only while connections arrive: woken by the first, asleep 10 s after the last)
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
    /// The probe sleeps once no connection has arrived for this long (nanoseconds).
    static let probeIdleAfter: UInt64 = 10_000_000_000
    private let probeIdleAfter: UInt64
    /// When a connection last arrived (monotonic nanoseconds), and whether the probe sleeps;
    /// `wakeProbe` starts it on the loop (set by `probeLoop`).
    private let lastArrival = Atomic<UInt64>(0)
    private let probeAsleep = Atomic<Bool>(true)
    private let wakeProbe = Mutex<(@Sendable () -> Void)?>(nil)

    init(limits: LimitsConfig, metrics: NodeMetrics, logger: Logger, probeIdleAfter: UInt64 = AcceptGate.probeIdleAfter) {
        self.probeIdleAfter = probeIdleAfter
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
        noteArrival(now: now)
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

    /// Measures the event loop's lateness every `probeInterval` (`LoopLagProbe`) while
    /// connections arrive: a loop saturated by strangers' connections shows here first, and
    /// the gate turns them away.
    func probeLoop(_ loop: EventLoop) -> LoopLagProbe {
        // Weak: the gate holds the probe (through `wakeProbe`).
        let probe = LoopLagProbe(on: loop, period: Self.probeInterval, keepRunning: { [weak self] in self?.probeKeepsRunning() ?? false }) {
            [weak self] lag in self?.loopLag.store(lag, ordering: .relaxed)
        }
        let bound = NIOLoopBound(probe, eventLoop: loop)
        wakeProbe.withLock { $0 = { loop.execute { bound.value.start() } } }
        if !probeAsleep.load(ordering: .sequentiallyConsistent) { loop.execute { bound.value.start() } }
        return probe
    }

    /// On an accept thread: wakes the probe if it sleeps.
    private func noteArrival(now: UInt64) {
        lastArrival.store(now, ordering: .sequentiallyConsistent)
        guard probeAsleep.load(ordering: .sequentiallyConsistent),
              probeAsleep.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
        else { return }
        wakeProbe.withLock { $0 }?()
    }

    /// On the loop, after a probe run: false (the probe sleeps) once no connection has
    /// arrived for `probeIdleAfter`. A connection arriving meanwhile either sees the probe
    /// asleep and wakes it, or is seen here.
    private func probeKeepsRunning() -> Bool {
        let now = Clocks.monotonic()
        guard now &- lastArrival.load(ordering: .sequentiallyConsistent) >= probeIdleAfter else { return true }
        probeAsleep.store(true, ordering: .sequentiallyConsistent)
        guard now &- lastArrival.load(ordering: .sequentiallyConsistent) < probeIdleAfter else { return false }
        // An arrival raced the decision: run on, unless it already woke the probe (then its
        // `start` re-arms, and returning true would too: either way one probe runs).
        return probeAsleep.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
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
