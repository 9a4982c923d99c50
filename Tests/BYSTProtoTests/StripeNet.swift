import NIOCore
import Testing
@testable import BYSTProto

/// Two session machines joined by simulated links of their own delay and rate, for the
/// striping tests: a record sent on a link departs once the link has sent the ones before it
/// (at the link's rate) and arrives `delay` later; a link asks its machine for records only
/// while fewer than `socketBuffer` bytes wait to depart (a full socket does not ask).
struct StripeNet {
    struct Link {
        let id: LinkID
        /// One-way delay, nanoseconds.
        var delay: Nanoseconds
        /// Bytes per nanosecond from `a` to `b` (the way back is never the bottleneck).
        var rate: Double
        var busyUntilAToB: Double = 0
        var aToB: [(arrival: Nanoseconds, payload: ByteBuffer)] = []
        var bToA: [(arrival: Nanoseconds, payload: ByteBuffer)] = []
        /// Stream data bytes `a` sent on the link, per stream.
        var dataBytes: [UInt32: Int] = [:]
    }

    var a: SessionMachine
    var b: SessionMachine
    var now: Nanoseconds = 1_000_000_000
    var links: [Link] = []
    let maxRecord = 16 * 1024
    let socketBuffer = 64 * 1024
    /// What `b` delivered per stream, in delivery order.
    var received: [UInt32: [UInt8]] = [:]
    var finished: Set<UInt32> = []
    /// Whether `b` consumes what it receives (extending the window).
    var consuming = true
    /// Data frames that arrived at `b` below the highest offset seen before them (reordered).
    var reorderedFrames = 0
    private var highestSeen: [UInt32: UInt64] = [:]
    /// The most bytes `b` held out of order for one stream at once.
    var maxHeld = 0
    /// The largest data frame end `a` sent beyond the limit `b` had announced (0 if never).
    var sentPastLimit: UInt64 = 0

    init(config: SessionConfig = .init(), links specs: [(delayMs: Double, mbPerSecond: Double)], striping: Bool = true) {
        a = SessionMachine(role: .initiator, config: config, now: now)
        b = SessionMachine(role: .responder, config: config, now: now, instance: 7)
        for (index, spec) in specs.enumerated() {
            let id = LinkID(index)
            links.append(Link(id: id, delay: Nanoseconds(spec.delayMs * 1_000_000), rate: spec.mbPerSecond / 1000))
            a.linkUp(id, now: now, striping: striping)
            b.linkUp(id, now: now, striping: striping)
        }
    }

    /// Opens a stream at `a` and returns its id.
    mutating func open() throws -> UInt32 {
        let id = a.openStream(target: "test:1")
        return try #require(id)
    }

    /// Advances time by `step` ns: both sides poll and write while their links ask, then
    /// whatever arrived by then is received.
    mutating func tick(_ step: Nanoseconds = 500_000) throws {
        now += step
        _ = a.poll(now: now)
        _ = b.poll(now: now)
        for index in links.indices { try write(on: index) }
        try deliver()
    }

    private mutating func write(on index: Int) throws {
        let id = links[index].id
        while links[index].busyUntilAToB - Double(now) < Double(socketBuffer) / links[index].rate,
              let payload = a.nextPayload(for: id, maxBytes: maxRecord) {
            let departs = max(Double(now), links[index].busyUntilAToB) + Double(payload.readableBytes) / links[index].rate
            links[index].busyUntilAToB = departs
            links[index].aToB.append((Nanoseconds(departs) + links[index].delay, payload))
            try countData(payload, on: index)
        }
        while let payload = b.nextPayload(for: id, maxBytes: maxRecord) {
            links[index].bToA.append((now + links[index].delay, payload))
        }
    }

    private mutating func countData(_ payload: ByteBuffer, on index: Int) throws {
        var copy = payload
        while let frame = try Frame.decode(from: &copy) {
            guard case .data(let stream, let offset, let bytes) = frame else { continue }
            links[index].dataBytes[stream, default: 0] += bytes.readableBytes
            let limit = b.streams[stream]?.advertisedLimit ?? UInt64.max
            let end = offset + UInt64(bytes.readableBytes)
            if end > limit { sentPastLimit = max(sentPastLimit, end) }
        }
    }

    /// Receives everything that arrived by `now`, in arrival order over all links.
    private mutating func deliver() throws {
        while true {
            var next: (index: Int, toB: Bool, arrival: Nanoseconds)?
            for index in links.indices {
                if let first = links[index].aToB.first, first.arrival <= now, first.arrival < next?.arrival ?? .max {
                    next = (index, true, first.arrival)
                }
                if let first = links[index].bToA.first, first.arrival <= now, first.arrival < next?.arrival ?? .max {
                    next = (index, false, first.arrival)
                }
            }
            guard let next else { return }
            let id = links[next.index].id
            if next.toB {
                let payload = links[next.index].aToB.removeFirst().payload
                noteOrder(payload)
                handle(try b.receive(payload, from: id, now: now))
            } else {
                _ = try a.receive(links[next.index].bToA.removeFirst().payload, from: id, now: now)
            }
        }
    }

    private mutating func noteOrder(_ payload: ByteBuffer) {
        var copy = payload
        while let frame = try? Frame.decode(from: &copy) {
            guard case .data(let stream, let offset, let bytes) = frame else { continue }
            if offset < highestSeen[stream] ?? 0 { reorderedFrames += 1 }
            highestSeen[stream] = max(highestSeen[stream] ?? 0, offset + UInt64(bytes.readableBytes))
        }
    }

    private mutating func handle(_ events: [SessionEvent]) {
        for event in events {
            switch event {
            case .streamData(let id, let bytes):
                received[id, default: []] += Array(bytes.readableBytesView)
                if consuming { b.consumed(bytes.readableBytes, on: id) }
            case .streamFinished(let id):
                finished.insert(id)
                b.finish(id)
            default: break
            }
        }
        for stream in b.streams.values { maxHeld = max(maxHeld, stream.reorder.heldBytes) }
    }

    /// Cuts link `index` at both ends: whatever was in flight on it is lost.
    mutating func cut(_ index: Int) {
        let id = links[index].id
        links[index].aToB.removeAll()
        links[index].bToA.removeAll()
        links.remove(at: index)
        a.linkDown(id, now: now)
        b.linkDown(id, now: now)
    }

    /// Sends `bytes` on `stream` from `a` (as the send buffer takes them), then its FIN, and
    /// runs until `b` has the FIN or `limit` ticks passed.
    mutating func transfer(_ bytes: [UInt8], on stream: UInt32, ticks limit: Int = 20_000,
                           during: (inout StripeNet, Int) throws -> Void = { _, _ in }) throws {
        var rest = ByteBuffer(bytes: bytes)
        var finSent = false
        for tick in 0..<limit where !finished.contains(stream) {
            if rest.readableBytes > 0 { a.send(&rest, on: stream) }
            if rest.readableBytes == 0, !finSent {
                a.finish(stream)
                finSent = true
            }
            try during(&self, tick)
            try self.tick()
        }
    }

    func dataBytes(on index: Int, stream: UInt32) -> Int { links[index].dataBytes[stream] ?? 0 }
}

/// Deterministic pseudo-random bytes.
func stripePattern(_ count: Int, seed: UInt32) -> [UInt8] {
    var state = seed &* 2_654_435_761 | 1
    return (0..<count).map { _ in
        state ^= state << 13; state ^= state >> 17; state ^= state << 5
        return UInt8(truncatingIfNeeded: state)
    }
}
