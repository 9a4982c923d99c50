/// A peer's transfer rate over the last few seconds, from its cumulative byte counters
/// sampled by the caller (the node samples every peer once a second; `byst status` reads the
/// rate, so it answers at once instead of waiting to sample twice itself).
///
/// **Invariants**: samples are kept oldest first, at most `capacity`; the oldest kept is the
/// newest one at least `span` older than the latest (or the oldest there is), so the rate
/// covers about `span` once the window is full. Counters that go backwards count as 0 bytes.
public struct TrafficWindow: Sendable {
    public struct Sample: Equatable, Sendable {
        public var at: Nanoseconds
        public var bytesIn: UInt64
        public var bytesOut: UInt64

        public init(at: Nanoseconds, bytesIn: UInt64, bytesOut: UInt64) {
            self.at = at
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
        }
    }

    public struct Rate: Equatable, Sendable {
        public var bytesInPerSecond: Double
        public var bytesOutPerSecond: Double
        /// The time the rate was measured over.
        public var seconds: Double

        public init(bytesInPerSecond: Double, bytesOutPerSecond: Double, seconds: Double) {
            self.bytesInPerSecond = bytesInPerSecond
            self.bytesOutPerSecond = bytesOutPerSecond
            self.seconds = seconds
        }
    }

    public let span: Nanoseconds
    public let capacity: Int
    public private(set) var samples: [Sample] = []

    public init(span: Nanoseconds = 5_000_000_000, capacity: Int = 16) {
        self.span = span
        self.capacity = max(2, capacity)
    }

    /// Adds a sample; one taken no later than the latest replaces nothing and is ignored.
    public mutating func record(_ sample: Sample) {
        if let latest = samples.last, sample.at <= latest.at { return }
        samples.append(sample)
        while samples.count > 2, sample.at - samples[1].at >= span { samples.removeFirst() }
        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
    }

    /// Two samples or more, and no byte between the oldest and the latest: the rate is 0 and
    /// stays so while the counters do not move (a peer without links need not be sampled).
    public var isFlat: Bool {
        guard let first = samples.first, let last = samples.last, samples.count >= 2 else { return false }
        return first.bytesIn == last.bytesIn && first.bytesOut == last.bytesOut
    }

    /// No sample, or flat: a peer without links need not be sampled (its rate stays nil or 0).
    public var isSettled: Bool { samples.isEmpty || isFlat }

    /// Bytes per second between the oldest and the latest sample; nil before two samples.
    public var rate: Rate? {
        guard let first = samples.first, let last = samples.last, last.at > first.at else { return nil }
        let seconds = Double(last.at - first.at) / 1e9
        func perSecond(_ from: UInt64, _ to: UInt64) -> Double { to >= from ? Double(to - from) / seconds : 0 }
        return Rate(bytesInPerSecond: perSecond(first.bytesIn, last.bytesIn),
                    bytesOutPerSecond: perSecond(first.bytesOut, last.bytesOut), seconds: seconds)
    }
}
