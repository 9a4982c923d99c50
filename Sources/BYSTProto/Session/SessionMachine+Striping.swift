// Striping one stream over several links (PROTOCOL.md §5.3, "Striping"). A stream has a home
// link; once it holds at least `stripeThreshold` bytes queued or unacknowledged, any link on
// which both sides offered `streamStriping` may carry its next chunk when that link would
// deliver it earliest. Links ask for data when they are writable (`writePayload`), so the
// decision is made per asking link:
//
//   expected delivery D(link) = bytes in flight there / its measured rate + RTT/2
//   home link:   takes the chunk  if D(home) ≤ min D + stripeHomeBias
//   other link:  takes the chunk  if D(link) + stripeHomeBias < D(home) and D(link) ≤ min D + tolerance
//
// The two rules complement each other: whenever the home link declines, the link with the
// smallest D qualifies, so the data never waits for nobody. A link whose socket is full does
// not ask, and its growing in-flight count keeps the others from leaving data for it.
extension SessionMachine {
    /// A link that is not the cheapest may still take a chunk when it is this close: the
    /// cheapest one may not be asking right now (links pump one after another).
    static let stripeTolerance: Double = 1_000_000
    /// Off its home link a stream's data goes in frames of at least this size (or its whole
    /// remainder): few, large out-of-order pieces for the receiver to hold.
    static let minStripeChunk = 8 * 1024
    /// Delivery rate assumed for links not measured yet when no link is (bytes per ns, about
    /// 8 Gbit/s): until a link proves slow, nothing is spread.
    static let assumedRate = 1.0

    /// Whether `link` may write stream bytes of `stream` now (its open goes on its home link
    /// regardless).
    func mayCarry(_ stream: StreamState, on link: LinkID) -> Bool {
        guard let home = stream.link else { return false }
        guard isStriped(stream), let mine = linkFlows[link], mine.striping, !mine.retiring else { return link == home }
        var fallback = 0.0
        for flow in linkFlows.values { fallback = max(fallback, flow.rate ?? 0) }
        if fallback == 0 { fallback = Self.assumedRate }
        var best = Double.infinity
        for (id, flow) in linkFlows where id == home || (flow.striping && !flow.retiring) {
            best = min(best, flow.expectedDelivery(fallbackRate: fallback))
        }
        let bias = Double(config.stripeHomeBias.nanoseconds)
        let delivery = mine.expectedDelivery(fallbackRate: fallback)
        if link == home { return delivery <= best + bias }
        let homeDelivery = linkFlows[home]?.expectedDelivery(fallbackRate: fallback) ?? .infinity
        return delivery + bias < homeDelivery && delivery <= best + Self.stripeTolerance
    }

    /// The stream may be spread: the peer reassembles (its home link negotiated striping), it
    /// knows the stream (open acknowledged), and enough is buffered to be worth it.
    func isStriped(_ stream: StreamState) -> Bool {
        guard stream.stripeCandidate, stream.openAcknowledged, stream.send.buffered >= config.stripeThreshold,
              let home = stream.link, let flow = linkFlows[home] else { return false }
        return flow.striping
    }

    /// After `send` queued bytes: a stream that now holds enough is offered to every link.
    mutating func considerStriping(_ stream: inout StreamState) {
        guard !stream.stripeCandidate, stream.send.buffered >= config.stripeThreshold else { return }
        stream.stripeCandidate = true
        stripeCandidates.append(stream.id)
    }

    /// After an acknowledgement: a stream drained below the threshold stays home again.
    mutating func reconsiderStriping(_ stream: inout StreamState) {
        guard stream.stripeCandidate, stream.send.buffered < config.stripeThreshold else { return }
        stream.stripeCandidate = false
        stripeCandidates.removeAll { $0 == stream.id }
    }

    /// `count` bytes of `stream` at `offset` went out on `link`.
    mutating func noteSent(_ stream: inout StreamState, on link: LinkID, offset: UInt64, count: Int) {
        stream.segments.record(link: link, offset: offset, count: count)
        // In place: no copy of the flow, no coroutine frame.
        if let index = linkFlows.index(forKey: link) { linkFlows.values[index].sent(count, at: clock) }
    }

    /// The peer acknowledged `stream` up to `offset`: those bytes are safe whatever link dies.
    mutating func noteAcknowledged(_ stream: inout StreamState, upTo offset: UInt64) {
        stream.segments.acknowledge(upTo: offset)
    }

    /// Everything of the stream not acknowledged goes again, from its acknowledged offset, with
    /// `home` as its link (the receiver drops what it already has).
    mutating func rewind(_ id: UInt32, home: LinkID?) {
        guard var stream = streams.removeValue(forKey: id) else { return }
        forgetSegments(of: &stream)
        stream.moved(to: home)
        streams[id] = stream
    }

    /// The bytes already sent stay queued on their links (`LinkFlow` counts them until the
    /// peer reports them), but the stream no longer waits for them.
    mutating func forgetSegments(of stream: inout StreamState) {
        stream.segments.removeAll()
    }

    /// Streams homed elsewhere that sent bytes on `link`, which is gone: those bytes may be
    /// lost, so they resend from their acknowledged offset (PROTOCOL.md §5.3).
    mutating func rewindStripes(lostOn link: LinkID) {
        let hit = streams.values.filter { $0.segments.carries(on: link) }.map { ($0.id, $0.link) }
        for (id, home) in hit { rewind(id, home: home) }
    }
}
