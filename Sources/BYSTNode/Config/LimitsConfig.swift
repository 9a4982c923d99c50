import BYSTProto

/// `[limits]`: caps on what peers, and strangers, can make a node hold or do
/// (docs/OPERATIONS.md, "Limits"). Each cap reached counts in `byst_limit_hits_total{limit}`
/// and logs a line (rate-limited); none of them stops the node.
///
/// **Invariants** (from the loader): every value is within its `…Range` below, and
/// `sessionBuffer ≥ streamBuffer`.
public struct LimitsConfig: Sendable, Equatable {
    /// Links one peer may have up with us at once, over all its sessions (accepted links
    /// beyond it are closed). 64 links (the most a peer dials) plus as many replacements
    /// during recycling.
    public var linksPerPeer = 128
    public static let linksPerPeerRange = 1...4096
    /// Sessions one peer may have with us at once (a restarted peer starts a new one while
    /// the old lingers): the oldest without links makes room, else the new link is refused.
    public var sessionsPerPeer = 16
    public static let sessionsPerPeerRange = 1...1024
    /// Accepted connections whose handshake is not complete (anyone's): beyond it the oldest
    /// is closed. Far below the 65,536 files of the systemd units.
    public var pendingHandshakes = 512
    public static let pendingHandshakesRange = 1...65536
    /// An accepted connection must complete its handshake (HTTP: send its request head, then
    /// its handshake) within this. Two round trips even on a satellite path take ~1.5 s.
    /// (Links we dial keep 10 s: theirs includes a proxy's CONNECT and TLS.)
    public var handshakeTimeout: Duration = .seconds(5)
    public static let handshakeTimeoutRange: ClosedRange<Duration> = .seconds(1)...(.seconds(60))
    /// Connections per second one source address (IPv6: /64) may open to the link listeners
    /// in the long run; 0 turns per-source limiting off.
    public var handshakeRate = 20
    public static let handshakeRateRange = 0...1_000_000
    /// Connections a source may open back to back: a peer's links dialed at once, several
    /// peers behind one NAT reconnecting together.
    public var handshakeBurst = 100
    public static let handshakeBurstRange = 1...1_000_000
    /// Source addresses whose rate is tracked at once (a table of about 50 bytes each).
    public var handshakeSources = 4096
    public static let handshakeSourcesRange = 16...1_048_576
    /// Connections per second from sources without a handshake in the last 10 minutes, all
    /// together (a distributed flood's): what strangers may cost the event loop. A node's
    /// known peers reconnect without it. 0: no such rate.
    public var acceptRate = 500
    public static let acceptRateRange = 0...1_000_000
    public var acceptBurst = 1000
    public static let acceptBurstRange = 1...1_000_000
    /// The event loop counts as behind — and connections from such sources are reset as
    /// accepted — while this many accepted connections wait to be set up on it, or while its
    /// timers run this late (three probes in a row).
    public var acceptBacklog = 64
    public static let acceptBacklogRange = 1...65536
    public var acceptLoopLag: Duration = .milliseconds(20)
    public static let acceptLoopLagRange: ClosedRange<Duration> = .milliseconds(1)...(.seconds(10))
    /// Streams (port-forward connections) one session may have open.
    public var streamsPerSession = 4096
    public static let streamsPerSessionRange = 1...65536
    /// Bytes buffered for one stream in each direction: its receive window (what the peer may
    /// send before our application consumed it) and its send buffer. At least the 256 KiB a
    /// stream opener may send before any acknowledgement (PROTOCOL.md §5.4). The session's
    /// default (`SessionConfig`). A forward between TUN nodes, whose acks cross threads, moved
    /// more with 4 MiB, but duplex uploads through nginx stall with it (docs/perf-log, issue 23).
    public var streamBuffer = Int(SessionConfig().streamWindow)
    public static let streamBufferRange = (256 << 10)...(64 << 20)
    /// Bytes buffered for all streams of a session together, in each direction: the session
    /// receive window and the cap on all send buffers. At least the 4 MiB of initial session
    /// credit (PROTOCOL.md §5.4).
    public var sessionBuffer = Int(SessionConfig().sessionWindow)
    public static let sessionBufferRange = (4 << 20)...(1 << 30)
    /// An HTTP request head (request line and header fields) on the HTTP link listeners;
    /// larger ones are answered 431.
    public var httpHeadBytes = HTTPLimits().maxHeadBytes
    public static let httpHeadBytesRange = 1024...(64 << 10)
    /// An HTTP link listener's connection that carries split-mode POSTs is closed after this
    /// long idle between POSTs, or when a POST's body stops arriving for this long (a proxy
    /// keeps such connections for reuse; ours are worth one only while they are used).
    public var httpIdleTimeout: Duration = .seconds(60)
    public static let httpIdleTimeoutRange: ClosedRange<Duration> = .seconds(1)...(.seconds(3600))
    /// `byst registry serve`: ports and watches one client (peer) may hold.
    public var registryPorts = RegistryService.maxPortsPerClient
    public var registryWatches = RegistryService.maxWatchesPerClient
    public static let registryRange = 1...65536

    public init() {}

    /// What the session machines use.
    func apply(to session: inout SessionConfig) {
        session.maxStreams = streamsPerSession
        session.streamWindow = UInt64(streamBuffer)
        session.sendBufferLimit = streamBuffer
        session.sessionWindow = UInt64(sessionBuffer)
        session.sessionSendBufferLimit = sessionBuffer
    }

    var acceptPolicy: AcceptPolicy.Configuration {
        .init(perSource: .init(rate: handshakeRate, burst: handshakeBurst, maxSources: handshakeSources),
              acceptRate: acceptRate, acceptBurst: acceptBurst, maxInFlight: acceptBacklog, maxLoopLag: acceptLoopLag)
    }

    var httpLimits: HTTPLimits {
        var limits = HTTPLimits()
        limits.maxHeadBytes = httpHeadBytes
        return limits
    }

    var registry: RegistryService.Limits { .init(portsPerClient: registryPorts, watchesPerClient: registryWatches) }
}
