import NIOCore

/// One stream inside a `SessionMachine` (PROTOCOL.md §5.3).
///
/// **Invariants**
/// - `link` is the stream's home link: its open and, unless it is striped, all its frames go
///   out there; nil only while the session has no link. A striped stream's data and FIN may
///   also go out on other links (PROTOCOL.md §5.3, "Striping"); `segments` says where.
/// - Receive side: `received` counts contiguous bytes delivered (plus 1 once the FIN is
///   delivered); the peer may send below `advertisedLimit`, which never shrinks.
struct StreamState {
    let id: UInt32
    var link: LinkID?
    /// Locally opened: the target to (re)announce until the peer acknowledges the open.
    let target: String?
    var openPending: Bool
    var openAcknowledged: Bool
    var send = RetransmitQueue()
    var sendLimit: UInt64
    /// The application was refused bytes; tell it when there is room again.
    var writerBlocked = false
    /// Where the unacknowledged bytes went (the scheduler's per-link accounting).
    var segments = SentSegments()
    /// Listed in `SessionMachine.stripeCandidates`: enough is buffered that other links may
    /// carry some of it.
    var stripeCandidate = false

    var received: UInt64 = 0
    var consumed: UInt64 = 0
    var advertisedLimit: UInt64
    var finalOffset: UInt64?
    /// Bytes that arrived ahead of `received` (from other links of a striped stream).
    var reorder = ReorderBuffer()

    var finDelivered: Bool { finalOffset.map { received > $0 } ?? false }
    var isComplete: Bool { send.fullyAcked && finDelivered }

    init(id: UInt32, link: LinkID?, target: String?, sendLimit: UInt64, receiveWindow: UInt64) {
        self.id = id
        self.link = link
        self.target = target
        self.openPending = target != nil
        self.openAcknowledged = target == nil
        self.sendLimit = sendLimit
        self.advertisedLimit = max(receiveWindow, SessionMachine.initialStreamCredit)
    }

    /// The link changed: announce the stream again if needed and resend what is unacked.
    /// The caller forgets `segments` first (`SessionMachine.rewind`).
    mutating func moved(to newLink: LinkID?) {
        link = newLink
        send.rewind()
        if !openAcknowledged { openPending = true }
    }
}

/// What a closed stream left behind, to answer late frames (PROTOCOL.md §5.3).
enum ClosedStream {
    /// Completed: re-acknowledge anything up to this received offset.
    case finished(received: UInt64)
    /// Reset: answer with the reset again.
    case reset(Frame.ResetCode)
}
