import BYSTProto

/// Who sent a split-mode upstream POST: its connection (numbered by the registry, never
/// reused) and its source address (IPv6: its /64), for the bounds on unpaired tokens.
struct SplitOrigin: Hashable {
    let connection: UInt64
    let source: HandshakeSource?
}

extension SplitRegistry {
    /// The caps on what waits for pairing (PROTOCOL.md §6.3). A token is *unpaired* from the
    /// POST that creates it until its GET arrives; only the GET makes a link, which the
    /// handshake deadline and `pending_handshakes` then bound. Our clients send the GET
    /// first, so their tokens are seldom unpaired, and then with only handshake message 1
    /// (about 100 bytes) waiting.
    struct Limits {
        /// A client's connection carries one link's POSTs at a time.
        var unpairedPerConnection = 1
        /// Per source address (IPv6: its /64): several links, or clients behind one proxy or
        /// NAT, whose POSTs overtake their GETs.
        var unpairedPerSource = 16
        var unpaired = 1024
        var pendingBytesPerToken = 64 << 10
        var pendingBytes = 16 << 20
    }
}

/// The unpaired tokens and their waiting bytes, counted against `SplitRegistry.Limits`.
///
/// **Invariants**: `count` is the number of tokens added and not removed, the sum of
/// `byConnection`'s values, and at least the sum of `bySource`'s (tokens from Unix sockets
/// have no source); no value is zero (its key is removed); `bytes` is what was buffered for
/// the tokens still counted.
struct UnpairedTokens {
    let limits: SplitRegistry.Limits
    private(set) var count = 0
    private(set) var bytes = 0
    private var byConnection: [UInt64: Int] = [:]
    private var bySource: [HandshakeSource: Int] = [:]

    init(limits: SplitRegistry.Limits) {
        self.limits = limits
    }

    /// Why `origin` may not add another unpaired token, if it may not.
    func refusal(toAdd origin: SplitOrigin) -> SplitRegistry.Refusal? {
        if byConnection[origin.connection, default: 0] >= limits.unpairedPerConnection { return .connectionHoldsUnpaired }
        if let source = origin.source, bySource[source, default: 0] >= limits.unpairedPerSource {
            return .sourceFull(source, cap: limits.unpairedPerSource)
        }
        if count >= limits.unpaired { return .full(cap: limits.unpaired) }
        return nil
    }

    mutating func add(_ origin: SplitOrigin) {
        count += 1
        byConnection[origin.connection, default: 0] += 1
        if let source = origin.source { bySource[source, default: 0] += 1 }
    }

    /// A token paired or expired, with the bytes that waited for it.
    mutating func remove(_ origin: SplitOrigin, bytes waited: Int) {
        count -= 1
        bytes -= waited
        Self.decrement(&byConnection, origin.connection)
        if let source = origin.source { Self.decrement(&bySource, source) }
    }

    /// Why `more` bytes may not wait for a token that has `held` waiting, if they may not.
    func refusal(toBuffer more: Int, held: Int) -> SplitRegistry.Refusal? {
        if held + more > limits.pendingBytesPerToken { return .tooMuchPending(cap: limits.pendingBytesPerToken) }
        if bytes + more > limits.pendingBytes { return .pendingFull(cap: limits.pendingBytes) }
        return nil
    }

    mutating func buffered(_ more: Int) { bytes += more }

    private static func decrement<Key: Hashable>(_ counts: inout [Key: Int], _ key: Key) {
        guard let value = counts[key] else { return }
        counts[key] = value > 1 ? value - 1 : nil
    }
}
