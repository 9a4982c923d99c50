import BYSTProto

/// Why a link's handshake did not complete: the `reason` label of
/// `byst_handshake_failures_total` (docs/OPERATIONS.md, "Metrics").
///
/// **Invariants**: raw values are Prometheus label values (lower case, `_`), stable across
/// releases because dashboards and alerts name them.
enum HandshakeFailureReason: String, CaseIterable, Sendable {
    /// Responder: no configured key has the initiator's key id (PROTOCOL.md §3.4 step 4):
    /// the two ends hold different keys, or the key is not configured here.
    case unknownKey = "unknown_key"
    /// The AEAD tag of a handshake message failed: a wrong key, or a tampered message.
    case authenticationFailed = "authentication_failed"
    /// The initiator's timestamp lies outside the window (clocks apart).
    case clockSkew = "clock_skew"
    /// A message 1 seen before (a replay, or a retransmission through a broken middlebox).
    case replayed
    /// The other side's hello carries our own node name: our own link turned back to us.
    case reflected
    /// Not a BYST handshake: bad magic, other version or suite, malformed message, or a
    /// first record that does not open.
    case malformed
    /// Initiator: the other end closed the connection during the handshake, which is how the
    /// dialing side sees its key refused.
    case closed
    /// The handshake did not complete within the handshake timeout.
    case timeout
    /// Accepting side: the source address opened connections faster than `handshake_rate`;
    /// closed when accepted, before reading anything.
    case rateLimited = "rate_limited"
    /// Accepting side: closed unfinished to make room under `pending_handshakes` (the
    /// oldest pending connection goes first), or refused as accepted because unknown sources
    /// together were over `accept_rate` or the event loop was behind.
    case overloaded
    /// A socket, TLS, proxy or HTTP error before the handshake completed.
    case transport
    /// Our own failure (libcrypto), not the peer's doing.
    case `internal`

    init(_ error: HandshakeError) {
        switch error {
        case .unknownKeyID: self = .unknownKey
        case .authenticationFailed: self = .authenticationFailed
        case .timestampOutsideWindow: self = .clockSkew
        case .replayed: self = .replayed
        case .reflected: self = .reflected
        case .badMagic, .unsupportedVersion, .unsupportedSuite, .messageTooLarge, .malformedHello, .sessionMismatch,
             .invalidPublicKey, .truncated, .unexpectedMessage:
            self = .malformed
        case .crypto: self = .internal
        }
    }

    init(_ failure: LinkMachine.Failure) {
        switch failure {
        case .handshake(let error): self.init(error)
        // A first record that does not open; after the handshake nothing is counted.
        case .record(.crypto): self = .internal
        case .record, .notEstablished, .closed: self = .malformed
        }
    }
}

/// Why an IP packet was dropped: the `reason` label of `byst_packets_dropped_total`; the
/// same reasons as the `dropped_*` counters of `byst status --json`.
///
/// **Invariants**: raw values index `NodeMetrics`'s counter array (0 ..< allCases.count),
/// so counting a drop is an array access, not a lookup.
enum PacketDropReason: Int, CaseIterable, Sendable {
    /// From the TUN: no peer's `allowed_ips` holds the destination.
    case noRoute
    /// From the TUN: the peer has no session with a link up.
    case noSession
    /// From the TUN: the link's packet queue is full (the peer or the path is slower).
    case queueFull
    /// From a peer: the source address is outside that peer's `allowed_ips`.
    case spoofedSource
    /// Either way: not a parseable IPv4/IPv6 packet.
    case malformed
    /// To the TUN: write(2) failed.
    case tunWrite
    /// From the TUN: traffic that only means something on its own link (ICMP redirects,
    /// link-scoped multicast, IPv6 link-local sources), which the kernel sends into the TUN
    /// as into any interface; never carried to a peer (`IPPacket.isLinkScoped`).
    case linkScoped

    var label: String {
        switch self {
        case .noRoute: "no_route"
        case .noSession: "no_session"
        case .queueFull: "queue_full"
        case .spoofedSource: "spoofed_source"
        case .malformed: "malformed"
        case .tunWrite: "tun_write"
        case .linkScoped: "link_scoped"
        }
    }
}

/// A resource cap of `[limits]` (docs/OPERATIONS.md, "Limits"): the `limit` label of
/// `byst_limit_hits_total`.
///
/// **Invariants**: raw values are Prometheus label values, stable across releases; the
/// config key of each cap is its raw value unless noted.
enum ResourceLimit: String, CaseIterable, Sendable {
    /// `links_per_peer`: an accepted link beyond it was closed.
    case linksPerPeer = "links_per_peer"
    /// `sessions_per_peer`: a lingering session was ended to make room, or a link refused.
    case sessionsPerPeer = "sessions_per_peer"
    /// `pending_handshakes`: the oldest unfinished connection was closed to make room.
    case pendingHandshakes = "pending_handshakes"
    /// `handshake_rate` / `handshake_burst`: a connection was closed as it was accepted.
    case handshakeRate = "handshake_rate"
    /// `accept_rate` / `accept_burst`: a connection from a source without a recent handshake
    /// was closed as it was accepted (unknown sources together over their rate, or the event
    /// loop behind on setting up connections).
    case acceptRate = "accept_rate"
    /// `streams_per_session`: a stream open was refused (either side's).
    case streamsPerSession = "streams_per_session"
    /// `stream_buffer`: the peer sent beyond a stream's window (its link was closed).
    case streamBuffer = "stream_buffer"
    /// `session_buffer`: the peer sent beyond the session window (its link was closed), or
    /// our streams' send buffers together reached it (they wait).
    case sessionBuffer = "session_buffer"
    /// `http_max_head`: an HTTP request head too large or with too many fields (431).
    case httpHead = "http_max_head"
    /// Split-mode pairing (fixed caps, not in `[limits]`; PROTOCOL.md §6.3): a POST that
    /// would create a second link token waiting for its GET on one connection, one beyond
    /// the source's or the node's share of such tokens, or bytes beyond what may wait for them.
    case splitUnpairedPerConnection = "split_unpaired_per_connection"
    case splitUnpairedPerSource = "split_unpaired_per_source"
    case splitUnpaired = "split_unpaired"
    case splitPendingBytes = "split_pending_bytes"
    /// `registry_ports` / `registry_watches`: a registry request beyond them was refused.
    case registryPorts = "registry_ports"
    case registryWatches = "registry_watches"
}
