/// Puts one peer's striped packets back in order (PROTOCOL.md §5.4, "Packet striping"), as
/// glorytun and mlvpn do: the packet numbered `next` goes out at once and takes the held
/// packets after it along; a packet beyond `next` is held until the gap before it fills — or
/// until the gap is given up, when the oldest held packet has waited `holdTime` or the
/// holding passes `maxPackets` or `maxBytes`: then what is held goes out in order and the
/// missing numbers are skipped. A late packet (below `next`: its gap was given up) goes out at
/// once, not dropped: the inner TCP would rather see it late than resend it.
///
/// Sans-IO: fed sequence numbers, sizes and the time. The caller writes the packet when
/// `receive` says so, then everything `popReady` hands back, in that order; `expire` at
/// `deadline`. Sequence numbers compare with serial arithmetic (RFC 1982) over 64 bits.
public struct PacketReorder<Packet> {
    public struct Limits: Sendable, Equatable {
        public var maxPackets: Int
        public var maxBytes: Int
        public var holdTime: Nanoseconds

        public init(maxPackets: Int, maxBytes: Int, holdTime: Nanoseconds) {
            self.maxPackets = max(1, maxPackets)
            self.maxBytes = maxBytes
            self.holdTime = holdTime
        }

        /// The links are TCP: a packet is lost only when a link dies with packets queued, so
        /// nearly every gap is a packet still on its way — behind a slightly deeper queue, or a
        /// sender or receiver thread the scheduler held back. Giving a gap up too early costs
        /// the TCP inside a burst of retransmissions; waiting costs only when a link died (the
        /// peer's flows then pause that long, once). Measured with one flow over 4 links on a
        /// busy 2-core machine: 20 ms gave up 8–10 gaps in 8 s (≈ 400 retransmissions), 60 ms
        /// none (docs/PERFORMANCE.md). 50 ms stays far under the inner TCP's retransmission
        /// timer (≥ 200 ms). 1,024 packets and 4 MiB bound what one peer makes us hold; at high
        /// rates they, not the time, give up a gap left by a lost packet.
        public static var standard: Limits { Limits(maxPackets: 1024, maxBytes: 4 << 20, holdTime: 50_000_000) }
    }

    public struct Counts: Sendable, Equatable {
        /// Packets held for a while (they arrived ahead of a gap).
        public var held: UInt64 = 0
        /// Packets that arrived below `next` (their gap had been given up) and went out at once.
        public var late: UInt64 = 0
        /// Sequence numbers given up (the gaps skipped).
        public var skipped: UInt64 = 0
        /// Packets whose number was already held: dropped.
        public var duplicates: UInt64 = 0
        /// Jumps of more than `resyncDistance`: the sender started a new sequence.
        public var restarts: UInt64 = 0
        /// Gaps given up because the holding reached `maxPackets` or `maxBytes` (the others
        /// timed out).
        public var overflows: UInt64 = 0
        public init() {}
    }

    private struct Held {
        var packet: Packet
        var size: Int
        var arrival: Nanoseconds
    }

    /// Numbers further than this from `next`, either way, start a new sequence (the sender
    /// restarted, or another plane numbers the peer's packets now): far beyond any reordering.
    public static var resyncDistance: UInt64 { 1 << 32 }

    public let limits: Limits
    /// Held packets by `seq % maxPackets`: the window is `next ..< next + maxPackets`.
    private var slots: [Held?]
    private var next: UInt64?
    private var heldCount = 0
    private var heldBytes = 0
    /// Released, waiting for `popReady`.
    private var ready: [Packet] = []
    private var readyIndex = 0
    /// When the oldest held packet has waited `holdTime` (nil while nothing is held).
    public private(set) var deadline: Nanoseconds?
    public private(set) var counts = Counts()

    public init(limits: Limits = .standard) {
        self.limits = limits
        slots = Array(repeating: nil, count: limits.maxPackets)
    }

    /// Packets held now.
    public var holding: Int { heldCount }

    /// Packet `seq` of `size` bytes arrived at `now`. True: write it now, then what
    /// `popReady` gives. False: it was held (`copy` made what is kept: the caller's bytes may
    /// be gone after this call) or dropped as a duplicate; write what `popReady` gives.
    public mutating func receive(seq: UInt64, size: Int, now: Nanoseconds, copy: () -> Packet) -> Bool {
        guard let expected = next else {
            next = seq &+ 1
            return true
        }
        let distance = seq &- expected
        if distance == 0 {
            next = expected &+ 1
            releaseRun()
            return true
        }
        let behind = distance >= 1 << 63
        if (behind ? 0 &- distance : distance) > Self.resyncDistance {
            // A new sequence: what the old one holds goes first, then this packet.
            counts.restarts += 1
            releaseAll()
            ready.append(copy())
            next = seq &+ 1
            return false
        }
        if behind {
            counts.late += 1
            return true
        }
        if distance >= UInt64(limits.maxPackets) {
            // Beyond the window: give up the oldest gaps until it fits.
            counts.overflows += 1
            skip(to: seq &- UInt64(limits.maxPackets) &+ 1)
            if next == seq {
                next = seq &+ 1
                releaseRun()
                ready.append(copy())
                return false
            }
        }
        let index = slot(seq)
        guard slots[index] == nil else {
            counts.duplicates += 1
            return false
        }
        slots[index] = Held(packet: copy(), size: size, arrival: now)
        heldCount += 1
        heldBytes += size
        counts.held += 1
        if deadline == nil { deadline = now &+ limits.holdTime }
        while heldBytes > limits.maxBytes, heldCount > 0 {
            counts.overflows += 1
            skipGap()
        }
        return false
    }

    /// The next packet to write, in order, or nil.
    public mutating func popReady() -> Packet? {
        guard readyIndex < ready.count else {
            if !ready.isEmpty {
                ready.removeAll(keepingCapacity: true)
                readyIndex = 0
            }
            return nil
        }
        readyIndex += 1
        return ready[readyIndex - 1]
    }

    /// At or after `deadline`: gives up the gaps before packets that waited `holdTime`.
    public mutating func expire(now: Nanoseconds) {
        while let deadline, deadline <= now, heldCount > 0 { skipGap() }
    }

    /// Releases everything held, in order, skipping the gaps (the peer's links are gone).
    public mutating func releaseAll() {
        while heldCount > 0 { skipGap() }
    }

    // MARK: Internals

    private func slot(_ seq: UInt64) -> Int { Int(seq % UInt64(limits.maxPackets)) }

    /// Gives up the gap at `next`: skips to the first held packet and releases the run there.
    private mutating func skipGap() {
        guard let start = next, heldCount > 0 else { return }
        var seq = start
        while slots[slot(seq)] == nil { seq &+= 1 }
        skip(to: seq)
    }

    /// Releases every held packet below `target` in order, skipping what is missing, then the
    /// run that starts at `target`.
    private mutating func skip(to target: UInt64) {
        guard var seq = next else { return }
        while seq != target, heldCount > 0 {
            if !take(seq) { counts.skipped += 1 }
            seq &+= 1
        }
        // Nothing held in the rest of the gap: count it without walking it.
        if seq != target { counts.skipped &+= target &- seq }
        next = target
        releaseRun()
    }

    /// Releases the held packets from `next` on while they follow each other, and sets the
    /// deadline by the oldest packet still held.
    private mutating func releaseRun() {
        guard var seq = next else { return }
        var released = false
        while heldCount > 0, take(seq) {
            seq &+= 1
            released = true
        }
        next = seq
        guard released || heldCount == 0 else { return }
        deadline = nil
        guard heldCount > 0 else { return }
        var oldest = Nanoseconds.max, found = 0, index = slot(seq)
        while found < heldCount {
            if let held = slots[index] {
                oldest = min(oldest, held.arrival)
                found += 1
            }
            index = index + 1 == slots.count ? 0 : index + 1
        }
        deadline = oldest &+ limits.holdTime
    }

    /// Moves packet `seq` from its slot to `ready`; false if it is not held.
    private mutating func take(_ seq: UInt64) -> Bool {
        let index = slot(seq)
        guard let held = slots[index] else { return false }
        slots[index] = nil
        heldCount -= 1
        heldBytes -= held.size
        ready.append(held.packet)
        return true
    }
}
