/// What a peer's failing dials put in the log (docs/OPERATIONS.md, "Logs"): fed each failed
/// attempt's cause and the time, it answers with the line to write, if any.
///
/// - The first failure of an episode (failures with no link coming up in between) is logged
///   with its cause; so is each other cause the first time it shows in the episode. A cause
///   seen before in the episode is not logged again: N links failing in turn, or `auto`
///   trying its modes, cannot make lines flip-flop between two causes.
/// - While failures go on, one summary every `summaryInterval`:
///   `still failing: <cause> (n attempts since HH:MM:SS)`.
/// - The first link up after failures that were logged: `dial succeeded after n failed
///   attempts (…)` (not "link up …": that is the per-link line operators and scripts count).
///   After quiet failures only (`auto` finding its mode) nothing: nothing was announced.
///
/// **Invariants**: at most `maxCausesPerEpisode` cause lines per episode, then only
/// summaries (so causes carrying text cannot grow the log without bound); at most one summary
/// per `summaryInterval`; `last` keeps the latest failure also after recovery (for
/// `byst status`). Times are wall-clock nanoseconds since the epoch; HH:MM:SS is UTC, as the
/// log's own time stamps are.
public struct DialFailureLog: Sendable {
    public struct Line: Equatable, Sendable {
        public enum Level: Sendable, Equatable {
            case info
            case warning
        }
        public var level: Level
        public var message: String

        public init(level: Level, message: String) {
            self.level = level
            self.message = message
        }
    }

    /// The latest failed attempt: what `byst status` shows as `last_error`.
    public struct LastFailure: Equatable, Sendable {
        public var cause: DialFailureCause
        /// Wall-clock nanoseconds since the epoch.
        public var at: UInt64
        /// Failed attempts in its episode, up to and including it.
        public var attempts: Int

        public init(cause: DialFailureCause, at: UInt64, attempts: Int) {
            self.cause = cause
            self.at = at
            self.attempts = attempts
        }
    }

    public static let defaultSummaryInterval: UInt64 = 300 * 1_000_000_000
    public static let maxCausesPerEpisode = 8

    public let summaryInterval: UInt64
    public private(set) var last: LastFailure?
    private var failingSince: UInt64?
    private var attempts = 0
    private var causesLogged: Set<DialFailureCause> = []
    /// A line about this episode was written (a cause or a summary).
    private var announced = false
    private var lastLineAt: UInt64 = 0

    public init(summaryInterval: UInt64 = Self.defaultSummaryInterval) {
        self.summaryInterval = summaryInterval
    }

    /// Whether the peer's dials are failing now (no link came up since the last failure).
    public var isFailing: Bool { failingSince != nil }

    /// When the current run of failures began (wall clock), nil while not failing.
    public var failingStartedAt: UInt64? { failingSince }

    /// `quietly`: count the attempt, but its cause is not news (`auto` moving on to its next
    /// HTTP mode says so itself once a mode works); only a summary may be due.
    public mutating func failed(_ cause: DialFailureCause, now: UInt64, quietly: Bool = false) -> Line? {
        attempts += 1
        let since = failingSince ?? now
        failingSince = since
        last = LastFailure(cause: cause, at: now, attempts: attempts)
        let level: Line.Level = cause.isAuthProblem ? .warning : .info
        if quietly {
            // Nothing to announce.
        } else if causesLogged.isEmpty {
            causesLogged.insert(cause)
            return line(level, "dial failed: \(cause)", now: now)
        } else if !causesLogged.contains(cause), causesLogged.count < Self.maxCausesPerEpisode {
            causesLogged.insert(cause)
            return line(level, "dial failed, new cause: \(cause) (\(attemptsSince(since)))", now: now)
        }
        // Counted from the episode's start when nothing was logged in it yet.
        let reference = max(lastLineAt, since)
        guard now >= reference, now - reference >= summaryInterval else { return nil }
        return line(level, "still failing: \(cause) (\(attemptsSince(since)))", now: now)
    }

    /// A link came up: ends the episode.
    public mutating func succeeded(now: UInt64) -> Line? {
        guard let since = failingSince else { return nil }
        defer {
            failingSince = nil
            attempts = 0
            causesLogged = []
            announced = false
        }
        guard announced else { return nil }
        let plural = attempts == 1 ? "" : "s"
        return line(.info, "dial succeeded after \(attempts) failed attempt\(plural) (failing since \(Self.clock(since)))", now: now)
    }

    private mutating func line(_ level: Line.Level, _ message: String, now: UInt64) -> Line {
        lastLineAt = now
        announced = true
        return Line(level: level, message: message)
    }

    private func attemptsSince(_ since: UInt64) -> String {
        "\(attempts) attempt\(attempts == 1 ? "" : "s") since \(Self.clock(since))"
    }

    /// `HH:MM:SS` (UTC) of a wall-clock time in nanoseconds since the epoch.
    public static func clock(_ nanoseconds: UInt64) -> String {
        let seconds = (nanoseconds / 1_000_000_000) % 86_400
        func two(_ value: UInt64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60))"
    }
}
