import BYSTProto
import Testing

/// The rate `byst status` shows: bytes per second over the last few seconds of samples.
@Suite struct TrafficWindowTests {
    static let second: Nanoseconds = 1_000_000_000

    func sample(_ seconds: Double, _ bytesIn: UInt64, _ bytesOut: UInt64) -> TrafficWindow.Sample {
        .init(at: Nanoseconds(seconds * 1e9), bytesIn: bytesIn, bytesOut: bytesOut)
    }

    @Test func noRateBeforeTwoSamples() {
        var window = TrafficWindow()
        #expect(window.rate == nil)
        window.record(sample(1, 100, 100))
        #expect(window.rate == nil)
    }

    @Test func theRateCoversTheLastSpanOnly() {
        var window = TrafficWindow(span: 5 * Self.second)
        // 10 s of 1000 B/s in, then 5 s of 3000 B/s in; out stays at 0.
        var total: UInt64 = 0
        for second in 0...10 {
            window.record(sample(Double(second), total, 0))
            total += 1000
        }
        total -= 1000
        for second in 11...15 {
            total += 3000
            window.record(sample(Double(second), total, 0))
        }
        let rate = window.rate
        #expect(rate == .init(bytesInPerSecond: 3000, bytesOutPerSecond: 0, seconds: 5))
        #expect(window.samples.count == 6)
    }

    @Test func aCounterThatGoesBackReadsAsNothingAndOldSamplesAreIgnored() {
        var window = TrafficWindow(span: 5 * Self.second)
        window.record(sample(1, 5000, 100))
        window.record(sample(2, 4000, 300))
        window.record(sample(1.5, 9_999_999, 9_999_999))  // earlier than the latest: ignored
        #expect(window.rate == .init(bytesInPerSecond: 0, bytesOutPerSecond: 200, seconds: 1))
    }

    @Test func samplesStayBoundedWhateverTheSpan() {
        var window = TrafficWindow(span: 3600 * Self.second, capacity: 4)
        for second in 0..<100 { window.record(sample(Double(second), UInt64(second) * 10, 0)) }
        #expect(window.samples.count == 4)
        #expect(window.rate?.bytesInPerSecond == 10)
    }

    @Test func aWindowIsFlatOnlyWhenNoByteMovedAcrossIt() {
        var window = TrafficWindow(span: 5 * Self.second)
        #expect(!window.isFlat)  // no samples: a peer never sampled is sampled
        window.record(sample(1, 700, 70))
        #expect(!window.isFlat)  // one sample: no rate yet
        window.record(sample(2, 700, 70))
        #expect(window.isFlat && window.rate?.bytesInPerSecond == 0)
        window.record(sample(3, 700, 71))
        #expect(!window.isFlat)
        // The byte leaves the window after its span: flat again.
        for second in 4...9 { window.record(sample(Double(second), 700, 71)) }
        #expect(window.isFlat)
    }

    @Test func aWindowIsSettledWithoutSamplesOrWhenFlat() {
        var window = TrafficWindow(span: 5 * Self.second)
        #expect(window.isSettled)  // a peer never connected: nothing to sample
        window.record(sample(1, 700, 70))
        #expect(!window.isSettled)  // one sample: its rate is not known yet
        window.record(sample(2, 800, 70))
        #expect(!window.isSettled)
        for second in 3...8 { window.record(sample(Double(second), 800, 70)) }
        #expect(window.isSettled && window.rate?.bytesInPerSecond == 0)
    }
}
