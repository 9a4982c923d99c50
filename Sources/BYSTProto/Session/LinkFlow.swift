// What the striping scheduler knows of one link (PROTOCOL.md §5.3, "Striping"): stream bytes
// sent there that the peer has not reported received on it yet (`linkReceived` frames), the
// rate at which those reports grow, and the keepalive RTT. Per-link reports rather than the
// streams' acks: an ack is cumulative, so bytes that crossed a fast link but wait at the
// receiver behind a gap left by a slow one would count against the fast link. Kept apart from `LinkState` so that the scheduler can read every link while
// `writePayload` holds one link's state swapped out.

/// Delivery estimate of one link for the striping scheduler.
///
/// **Invariants**: `dataReported ≤ dataSent` (a report beyond what was sent is clamped);
/// `busySince` is set exactly while `inFlight > 0`.
struct LinkFlow {
    /// Both hellos of this link offered `streamStriping`: the peer reassembles by offset and
    /// reports what arrived per link (`linkReceived` frames).
    let striping: Bool
    /// The link is retiring (PROTOCOL.md §5.6): it takes no new stream bytes.
    var retiring = false
    /// Smoothed keepalive RTT, copied from `LinkState` when a pong arrives.
    var smoothedRTT: Nanoseconds?
    /// Data-frame bytes we sent on the link, and the peer's latest report of those it received.
    private(set) var dataSent: UInt64 = 0
    private(set) var dataReported: UInt64 = 0
    /// Receiving side: data-frame bytes that arrived here, and whether to report them.
    private(set) var dataIn: UInt64 = 0
    var reportDue = false
    /// Reported bytes per nanosecond while the link had bytes in flight; nil until the first
    /// sample.
    private(set) var rate: Double?
    private var sampleBytes: UInt64 = 0
    private var sampleBusy: Nanoseconds = 0
    private var busySince: Nanoseconds?

    /// Busy time a rate sample spans: long enough to average over several records and
    /// reports, short enough to follow a link whose capacity changes.
    static let sampleInterval: Nanoseconds = 20_000_000

    init(striping: Bool) { self.striping = striping }

    /// Stream bytes sent on the link and not yet reported received: its queue.
    var inFlight: Int { Int(clamping: dataSent - dataReported) }

    mutating func sent(_ count: Int, at clock: Nanoseconds) {
        guard count > 0 else { return }
        if inFlight == 0 { busySince = clock }
        dataSent += UInt64(count)
    }

    /// Data bytes arrived on this link (we are its receiver): report them.
    mutating func arrived(_ count: Int) {
        guard striping else { return }
        dataIn += UInt64(count)
        reportDue = true
    }

    /// The peer received `total` data bytes on this link so far: the rest is still queued.
    mutating func reported(_ total: UInt64, at now: Nanoseconds) {
        let total = min(total, dataSent)
        guard total > dataReported else { return }
        sampleBytes += total - dataReported
        dataReported = total
        if let since = busySince, now > since { sampleBusy += now - since }
        busySince = inFlight > 0 ? now : nil
        guard sampleBusy >= Self.sampleInterval else { return }
        let sample = Double(sampleBytes) / Double(sampleBusy)
        rate = rate.map { $0 * 0.75 + sample * 0.25 } ?? sample
        sampleBytes = 0
        sampleBusy = 0
    }

    /// When a byte handed to this link now would arrive, in nanoseconds from now: what is
    /// queued ahead of it at the measured rate (`fallbackRate` until there is a sample),
    /// plus half an RTT.
    func expectedDelivery(fallbackRate: Double) -> Double {
        let rate = max(self.rate ?? fallbackRate, 1e-9)
        return Double(inFlight) / rate + Double(smoothedRTT ?? 0) / 2
    }
}
