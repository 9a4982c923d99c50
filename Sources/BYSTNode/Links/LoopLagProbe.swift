// How late the event loop runs (AcceptGate's overload signal):
//
//   every AcceptGate.probeInterval on the loop ─▶ lateness against the period
//   ─▶ least of the last three runs ─▶ report (AcceptGate's loopLag, read by accept threads)
//
// It runs only while connections arrive: `start` on demand, and it goes back to sleep
// (reporting no lag) once `keepRunning` says they stopped — an idle node is not woken
// 20 times a second.
import NIOCore

/// A callback that re-arms itself on the event loop (NIO's scheduled callbacks allocate
/// nothing per run, unlike a `RepeatedTask`'s promise and task per run).
/// Event loop only; `cancel` stops it for good.
final class LoopLagProbe: NIOScheduledCallbackHandler {
    private let loop: EventLoop
    private let period: TimeAmount
    private let keepRunning: () -> Bool
    private let report: (UInt64) -> Void
    /// Each run's own lateness (not the least of three), for the metrics.
    private let observe: ((UInt64) -> Void)?
    private var last: UInt64 = 0
    private var samples: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var next = 0
    private var scheduled: NIOScheduledCallback?
    private var cancelled = false

    /// Starts asleep. After each run, `keepRunning` says whether to go on; `report` gets the
    /// least lateness of the last three runs, in nanoseconds (0 when it goes to sleep).
    init(on loop: EventLoop, period: TimeAmount, keepRunning: @escaping () -> Bool,
         observe: ((UInt64) -> Void)? = nil, report: @escaping (UInt64) -> Void) {
        self.loop = loop
        self.period = period
        self.keepRunning = keepRunning
        self.observe = observe
        self.report = report
    }

    var isRunning: Bool { scheduled != nil }
    /// Runs so far (tests).
    private(set) var runs = 0

    /// Starts measuring afresh (the time asleep is no lateness); nothing if running.
    func start() {
        guard !cancelled, scheduled == nil else { return }
        last = Clocks.monotonic()
        samples = (0, 0, 0)
        arm()
    }

    func cancel() {
        cancelled = true
        scheduled?.cancel()
        scheduled = nil
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        scheduled = nil
        runs += 1
        report(record(now: Clocks.monotonic()))
        if keepRunning() { arm() } else { report(0) }
    }

    private func arm() {
        // Fails only when the loop shuts down: the probe ends with it.
        scheduled = try? loop.assumeIsolated().scheduleCallback(in: period, handler: self)
    }

    /// Records a run at `now`; returns the least lateness of the last three runs.
    private func record(now: UInt64) -> UInt64 {
        let elapsed = now - min(last, now)
        last = now
        let periodNanoseconds = UInt64(period.nanoseconds)
        let lateness = elapsed > periodNanoseconds ? elapsed - periodNanoseconds : 0
        observe?(lateness)
        switch next {
        case 0: samples.0 = lateness
        case 1: samples.1 = lateness
        default: samples.2 = lateness
        }
        next = (next + 1) % 3
        return min(samples.0, samples.1, samples.2)
    }
}
