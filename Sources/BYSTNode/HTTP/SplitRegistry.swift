import BYSTProto
import NIOCore

/// Where a split link lives: its GET's connection (HTTPServerFrontEnd), fed by its POSTs.
protocol SplitDownstream: AnyObject {
    func deliverUpstream(_ bytes: ByteBuffer)
    func upstreamBatchDone()
    /// Whether the link has completed its handshake (the client holds one of our keys).
    var linkAuthenticated: Bool { get }
}

/// Server side of split mode (PROTOCOL.md §6.3): pairs a link's downstream GET with its
/// upstream POSTs by link token, on the node's event loop.
///
///   GET  ?t=TOKEN        ─▶ attachDownstream ─▶ the link lives on the GET's connection
///   POST ?t=TOKEN&s=N    ─▶ beginUpstream(N) ▸ deliver(body bytes) ▸ finishUpstream(N, digest)
///   the same N again     ─▶ .repeated(digest of N): the front end compares, delivers nothing
///
/// Either may come first: a POST's token is *unpaired* until its GET arrives, and its
/// bytes wait (copied) until then. **Bounds** (`Limits`, counted by `UnpairedTokens`): a
/// connection, a source and the node may hold only so many unpaired tokens, and only so
/// many bytes may wait, per token and in all; an unpaired token is forgotten after
/// `pairingTimeout`. A paired token lives as long as its GET's connection.
final class SplitRegistry {
    private final class Entry {
        var downstream: SplitDownstream?
        /// Who created it with a POST, while it is unpaired (nil once paired).
        var unpairedOrigin: SplitOrigin?
        /// Upstream bytes that came before the GET: a copy, so that small slices do not keep
        /// whole read buffers alive.
        var pending = ByteBuffer()
        var nextSequence: UInt64 = 0
        /// Those of the last `rememberedParts` parts that were received to their end.
        var recentParts: [SplitPartDigest] = []
        /// The newest part while its body is still arriving (or was cut short): the next part
        /// may not start before it ended, or two bodies would reach the link interleaved.
        var receiving: UInt64?
        var expiry: Scheduled<Void>?

        init(downstream: SplitDownstream?, unpairedOrigin: SplitOrigin?) {
            self.downstream = downstream
            self.unpairedOrigin = unpairedOrigin
        }

        /// Whether part `sequence` is one of the last `rememberedParts` parts begun.
        func isRecent(_ sequence: UInt64) -> Bool {
            sequence < nextSequence && nextSequence - sequence <= UInt64(SplitRegistry.rememberedParts)
        }
    }

    /// How many of a link's last parts may come again (PROTOCOL.md §6.3): a client may have
    /// this many POSTs unanswered, and the GET's answer says so (`pipelineHeader`).
    static let rememberedParts = 4
    static let pipelineHeader = "BYST-Split-Pipeline"

    private var entries: [String: Entry] = [:]
    private var unpaired: UnpairedTokens
    private var connectionsNumbered: UInt64 = 0
    private let eventLoop: EventLoop
    private let pairingTimeout: TimeAmount
    /// The key of the parts' digests (`SplitPartDigest`): one per node, so that a part sent
    /// again on another connection compares; nil if the CSPRNG failed (no repeat is then
    /// recognised: each is refused, and the link is dialled again).
    private let partDigestKey = try? SecretBytes.random(count: KeyedDigest.keySize)

    init(eventLoop: EventLoop, pairingTimeout: TimeAmount, limits: Limits = Limits()) {
        self.eventLoop = eventLoop
        self.pairingTimeout = pairingTimeout
        unpaired = UnpairedTokens(limits: limits)
    }

    /// A digest for one connection's parts, under the node's key.
    func makePartDigest() -> KeyedDigest? { partDigestKey.flatMap { try? KeyedDigest(key: $0) } }

    /// A link token: 22 characters of base64url (16 random bytes), as our clients make them.
    static func isValidToken(_ token: String) -> Bool {
        token.utf8.count == 22 && Base64URL.decode(token)?.count == 16
    }

    /// Identifies a connection's POSTs for the bounds; one per connection.
    func newOrigin(source: HandshakeSource?) -> SplitOrigin {
        connectionsNumbered += 1
        return SplitOrigin(connection: connectionsNumbered, source: source)
    }

    /// The GET arrived; returns the upstream bytes that waited for it.
    func attachDownstream(_ token: String, _ downstream: SplitDownstream) throws(Refusal) -> ByteBuffer? {
        guard let entry = entries[token] else {
            entries[token] = Entry(downstream: downstream, unpairedOrigin: nil)
            return nil
        }
        guard entry.downstream == nil else { throw .downstreamTaken }
        entry.downstream = downstream
        let pending = entry.pending
        release(entry)
        return pending.readableBytes > 0 ? pending : nil
    }

    /// What a POST's part number makes it.
    enum PartKind: Equatable {
        /// The next part: its bytes go to the link.
        case next
        /// One of the last `rememberedParts` parts again (its answer was lost): answered if
        /// its bytes are the same as these, never delivered.
        case repeated(of: SplitPartDigest)
    }

    /// POST number `sequence` from `origin` starts; parts must come in order, the first may
    /// create the entry (an unpaired token). Each of the last `rememberedParts` parts may
    /// come again once it has been received to its end.
    @discardableResult
    func beginUpstream(_ token: String, sequence: UInt64, from origin: SplitOrigin) throws(Refusal) -> PartKind {
        let entry: Entry
        if let existing = entries[token] {
            entry = existing
        } else {
            guard sequence == 0 else { throw .unknownToken }
            entry = try addUnpaired(token, origin)
        }
        if entry.isRecent(sequence) {
            guard let part = entry.recentParts.first(where: { $0.sequence == sequence }) else { throw .repeatOfUnfinished(sequence) }
            return .repeated(of: part)
        }
        guard entry.nextSequence == sequence else { throw .outOfOrder(expected: entry.nextSequence, got: sequence) }
        if let receiving = entry.receiving { throw .previousUnfinished(receiving) }
        entry.receiving = sequence
        entry.nextSequence += 1
        entry.recentParts.removeAll { !entry.isRecent($0.sequence) }
        return .next
    }

    func deliver(_ token: String, _ bytes: ByteBuffer) throws(Refusal) {
        guard let entry = entries[token] else { throw .unknownToken }
        if let downstream = entry.downstream {
            downstream.deliverUpstream(bytes)
            return
        }
        if let refusal = unpaired.refusal(toBuffer: bytes.readableBytes, held: entry.pending.readableBytes) { throw refusal }
        entry.pending.writeImmutableBuffer(bytes)
        unpaired.buffered(bytes.readableBytes)
    }

    /// POST `sequence`'s body ended: remember its digest (if it is still one of the last parts
    /// and not known yet) and let the link process what it got as one read cycle.
    func finishUpstream(_ token: String, sequence: UInt64, _ part: SplitPartDigest?) {
        guard let entry = entries[token] else { return }
        if entry.receiving == sequence { entry.receiving = nil }
        if let part, entry.isRecent(part.sequence), !entry.recentParts.contains(where: { $0.sequence == part.sequence }) {
            entry.recentParts.append(part)
        }
        entry.downstream?.upstreamBatchDone()
    }

    /// Whether the token's link has completed its handshake.
    func isAuthenticated(_ token: String) -> Bool {
        entries[token]?.downstream?.linkAuthenticated ?? false
    }

    /// The downstream connection closed: the link is over, later POSTs get 404.
    func downstreamClosed(_ token: String, _ downstream: SplitDownstream) {
        guard let entry = entries[token], entry.downstream === downstream else { return }
        entries[token] = nil
    }

    /// Tokens known (paired or not).
    var count: Int { entries.count }
    var unpairedCount: Int { unpaired.count }
    /// Upstream bytes waiting for their GETs.
    var pendingBytes: Int { unpaired.bytes }

    private func addUnpaired(_ token: String, _ origin: SplitOrigin) throws(Refusal) -> Entry {
        if let refusal = unpaired.refusal(toAdd: origin) { throw refusal }
        unpaired.add(origin)
        let entry = Entry(downstream: nil, unpairedOrigin: origin)
        entry.expiry = eventLoop.assumeIsolated().scheduleTask(in: pairingTimeout) { [self] in
            guard let entry = entries[token], entry.downstream == nil else { return }
            release(entry)
            entries[token] = nil
        }
        entries[token] = entry
        return entry
    }

    /// The entry is no longer unpaired (its GET came, or it expired).
    private func release(_ entry: Entry) {
        entry.expiry?.cancel()
        entry.expiry = nil
        guard let origin = entry.unpairedOrigin else { return }
        unpaired.remove(origin, bytes: entry.pending.readableBytes)
        entry.unpairedOrigin = nil
        entry.pending = ByteBuffer()
    }
}
