import BYSTProto
import NIOCore

/// Server side of split mode (PROTOCOL.md §6.3): pairs a link's downstream GET with its
/// upstream POSTs by link token, on the node's event loop.
///
///   GET  ?t=TOKEN        ─▶ attachDownstream ─▶ the link lives on the GET's connection
///   POST ?t=TOKEN&s=N    ─▶ beginUpstream(N) ▸ deliver(body bytes) ▸ finishUpstream
///
/// Either may come first: upstream bytes wait (bounded) until the downstream is there.
/// **Bounds**: at most `maxEntries` tokens, `maxPendingBytes` waiting per token; a token
/// without a downstream is forgotten after `pairingTimeout`.
final class SplitRegistry {
    enum Refusal: Error, CustomStringConvertible {
        case unknownToken
        case outOfOrder(expected: UInt64, got: UInt64)
        case downstreamTaken
        case full
        case tooMuchPending

        var status: (Int, String) {
            switch self {
            case .unknownToken: (404, "Not Found")
            case .outOfOrder, .downstreamTaken: (409, "Conflict")
            case .full: (503, "Service Unavailable")
            case .tooMuchPending: (413, "Content Too Large")
            }
        }

        var description: String {
            switch self {
            case .unknownToken: "no split link with this token (expired or closed)"
            case .outOfOrder(let expected, let got): "upstream part \(got) out of order (expected \(expected))"
            case .downstreamTaken: "this link token already has a downstream"
            case .full: "too many split links waiting to pair"
            case .tooMuchPending: "too many upstream bytes before the downstream arrived"
            }
        }
    }

    private struct Entry {
        var downstream: HTTPServerFrontEnd?
        var pending: [ByteBuffer] = []
        var pendingBytes = 0
        var nextSequence: UInt64 = 0
        var expiry: Scheduled<Void>?
    }

    static let maxEntries = 4096
    static let maxPendingBytes = 1 << 20
    private var entries: [String: Entry] = [:]
    private let eventLoop: EventLoop
    private let pairingTimeout: TimeAmount

    init(eventLoop: EventLoop, pairingTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.pairingTimeout = pairingTimeout
    }

    /// A link token: 22 characters of base64url (16 random bytes), as our clients make them.
    static func isValidToken(_ token: String) -> Bool {
        token.utf8.count == 22 && Base64URL.decode(token)?.count == 16
    }

    /// The GET arrived; returns upstream bytes that were waiting for it.
    func attachDownstream(_ token: String, _ frontEnd: HTTPServerFrontEnd) throws(Refusal) -> [ByteBuffer] {
        var entry = try existingOrNew(token)
        guard entry.downstream == nil else { throw .downstreamTaken }
        entry.expiry?.cancel()
        entry.expiry = nil
        entry.downstream = frontEnd
        let pending = entry.pending
        entry.pending = []
        entry.pendingBytes = 0
        entries[token] = entry
        return pending
    }

    /// POST number `sequence` starts; parts must come in order, the first may create the entry.
    func beginUpstream(_ token: String, sequence: UInt64) throws(Refusal) {
        var entry: Entry
        if sequence == 0 { entry = try existingOrNew(token) } else {
            guard let existing = entries[token] else { throw .unknownToken }
            entry = existing
        }
        guard entry.nextSequence == sequence else { throw .outOfOrder(expected: entry.nextSequence, got: sequence) }
        entry.nextSequence += 1
        entries[token] = entry
    }

    func deliver(_ token: String, _ bytes: ByteBuffer) throws(Refusal) {
        guard var entry = entries[token] else { throw .unknownToken }
        if let downstream = entry.downstream {
            downstream.deliverUpstream(bytes)
            return
        }
        guard entry.pendingBytes + bytes.readableBytes <= Self.maxPendingBytes else { throw .tooMuchPending }
        entry.pending.append(bytes)
        entry.pendingBytes += bytes.readableBytes
        entries[token] = entry
    }

    /// A POST body ended: let the link process what it got as one read cycle.
    func finishUpstream(_ token: String) {
        entries[token]?.downstream?.upstreamBatchDone()
    }

    /// The downstream connection closed: the link is over, later POSTs get 404.
    func downstreamClosed(_ token: String, _ frontEnd: HTTPServerFrontEnd) {
        guard let entry = entries[token], entry.downstream === frontEnd else { return }
        entries[token] = nil
    }

    var count: Int { entries.count }

    private func existingOrNew(_ token: String) throws(Refusal) -> Entry {
        if let entry = entries[token] { return entry }
        guard entries.count < Self.maxEntries else { throw .full }
        var entry = Entry()
        entry.expiry = eventLoop.assumeIsolated().scheduleTask(in: pairingTimeout) { [self] in
            if entries[token]?.downstream == nil { entries[token] = nil }
        }
        return entry
    }
}
