/// Auto HTTP mode's check for a path that holds small writes, sans-IO (fed RTT samples).
///
/// A proxy that forwards an unended HTTP message with `MSG_MORE` (haproxy 2.6 with its
/// defaults) makes its kernel hold every write smaller than a segment that has nothing in
/// flight ahead of it for ≈ 200 ms (`TCP_RTO_MIN`). A duplex link's bodies never end, so
/// its keepalive pings and pongs each wait there, and in a bulk transfer so do the acks
/// going the other way: the transfer crawls at a window per 200 ms. After a WebSocket
/// upgrade the same proxy relays a tunnel and holds nothing.
///
/// The check compares the two modes on the same path:
/// 1. Duplex links report their keepalive RTT samples with their TCP connect time (the
///    time to the first hop). After `samples` of them, if even the smallest exceeds its
///    connect time by `suspicion`, a trial is worth one link: `.tryAlternative`, once.
/// 2. The trial link (WebSocket) reports its samples. After `samples`, the alternative wins
///    (`.useAlternative`) only if its smallest sample is at least `margin` below duplex's;
///    otherwise duplex stays (`.keepPrimary`).
///
/// The threshold only decides whether a trial is worth dialing; the verdict comes from the
/// comparison, so a genuinely far hub (both modes slow alike) keeps duplex. Once decided,
/// the check stays decided (`reset` starts over, for when the path may have changed).
public struct HeldWritesCheck: Sendable, Equatable {
    /// Samples taken (per mode) before judging: the smallest one counts, so a sample
    /// queued behind bulk data does not make a path look held.
    public static let samples = 3
    /// How far above the connect time duplex's smallest RTT must be for a trial: a held
    /// write costs ≥ 200 ms, a ping and its pong each may wait.
    public static let suspicion: Nanoseconds = 150_000_000
    /// How much lower the alternative's smallest RTT must be for it to win.
    public static let margin: Nanoseconds = 100_000_000

    public enum Verdict: Sendable, Equatable {
        /// Dial one link in the alternative mode on the same path and report its samples.
        case tryAlternative(primaryRTT: Nanoseconds)
        /// The alternative is not held where duplex is: use it.
        case useAlternative(primaryRTT: Nanoseconds, alternativeRTT: Nanoseconds)
        /// Duplex is no worse (or the trial did not come up): keep it.
        case keepPrimary(primaryRTT: Nanoseconds, alternativeRTT: Nanoseconds?)
    }

    enum State: Sendable, Equatable {
        /// Smallest RTT above the connect time, and smallest RTT, over `count` duplex samples.
        case watching(excess: Nanoseconds, rtt: Nanoseconds, count: Int)
        case trying(primaryRTT: Nanoseconds, best: Nanoseconds, count: Int)
        case decided
    }

    private(set) var state = State.watching(excess: .max, rtt: .max, count: 0)

    public init() {}

    /// Whether a trial link is out and its samples are awaited.
    public var isTrying: Bool {
        if case .trying = state { return true }
        return false
    }

    public var isDecided: Bool { state == .decided }

    /// One keepalive RTT sample of a duplex link whose TCP connect took `connectTime`.
    public mutating func primarySample(_ rtt: Nanoseconds, connectTime: Nanoseconds) -> Verdict? {
        guard case .watching(let excess, let smallest, let count) = state else { return nil }
        let newExcess = min(excess, rtt > connectTime ? rtt - connectTime : 0)
        let newSmallest = min(smallest, rtt)
        guard count + 1 >= Self.samples else {
            state = .watching(excess: newExcess, rtt: newSmallest, count: count + 1)
            return nil
        }
        guard newExcess >= Self.suspicion else {
            state = .decided
            return nil
        }
        state = .trying(primaryRTT: newSmallest, best: .max, count: 0)
        return .tryAlternative(primaryRTT: newSmallest)
    }

    /// One keepalive RTT sample of the trial link.
    public mutating func alternativeSample(_ rtt: Nanoseconds) -> Verdict? {
        guard case .trying(let primaryRTT, let best, let count) = state else { return nil }
        let newBest = min(best, rtt)
        guard count + 1 >= Self.samples else {
            state = .trying(primaryRTT: primaryRTT, best: newBest, count: count + 1)
            return nil
        }
        state = .decided
        guard newBest <= primaryRTT, primaryRTT - newBest >= Self.margin else {
            return .keepPrimary(primaryRTT: primaryRTT, alternativeRTT: newBest)
        }
        return .useAlternative(primaryRTT: primaryRTT, alternativeRTT: newBest)
    }

    /// The trial link closed before it gave its samples (refused, held, lost).
    public mutating func alternativeFailed() -> Verdict? {
        guard case .trying(let primaryRTT, _, _) = state else { return nil }
        state = .decided
        return .keepPrimary(primaryRTT: primaryRTT, alternativeRTT: nil)
    }

    /// The path may have changed (auto mode probes again): judge afresh.
    public mutating func reset() { state = .watching(excess: .max, rtt: .max, count: 0) }
}
