import BYSTProto

/// What `byst status --json` prints (README "Status"): one object per node.
struct StatusReport: Codable, Sendable {
    struct Link: Codable, Sendable {
        var id: Int
        var index: Int
        var remote: String
        /// `byst`, `raw`, `connect`, `duplex`, `split` or `websocket` (LinkHandler.transport).
        var transport: String? = nil
        /// The `[[peer]] uplinks` entry a dialed link leaves through.
        var uplink: String? = nil
        var state: String
        /// Smoothed round trip of BYST ping frames on this link (keepalives: record out, pong back).
        var rtt_ms: Double?
        var bytes_in: UInt64
        var bytes_out: UInt64
        /// The key the link authenticated with (changes during a key rotation).
        var key_id: String?
        var streams: Int
        /// What this side compresses on the link (PROTOCOL.md §4.2): "off", "streams", "all".
        var compression: String? = nil
        /// Records sent with a zstd payload, and as they were.
        var records_compressed: UInt64? = nil
        var records_uncompressed: UInt64? = nil
        /// Compression runs (incompressible data backs off: most records are not tried).
        var compression_attempts: UInt64? = nil
        /// Sent record payload bytes after / before compression (1 = nothing saved).
        var compression_ratio: Double? = nil
        /// Compressed records received.
        var records_decompressed: UInt64? = nil
        /// Since the link's handshake completed.
        var handshake_seconds_ago: Double? = nil
        /// Both sides offered `sequencedPackets` (PROTOCOL.md §5.4, "Packet striping"): our
        /// packets are striped over the link when our `packet_striping` is on for the peer, and
        /// the peer's sequenced packets put back in order by the plane that holds it.
        var sequenced_packets: Bool? = nil
    }

    struct Session: Codable, Sendable {
        var id: String
        var role: String
        var state: String
        var links: [Link]
        var streams: Int
    }

    /// The latest dialed link that failed before its handshake (DialFailureLog.last). Kept
    /// after links come up again (`failing` false then), so a flapping peer shows its cause.
    struct LastError: Codable, Sendable {
        /// The cause as the log's `dial failed: …` line gives it.
        var cause: String
        /// RFC 3339 UTC with milliseconds.
        var at: String
        var seconds_ago: Double
        /// Failed attempts in a row up to it.
        var attempts: Int
        /// No link came up since.
        var failing: Bool
        /// While failing: when this run of failures began (RFC 3339 UTC), and how long ago.
        var failing_since: String? = nil
        var failing_seconds: Double? = nil
    }

    /// The latest link to the peer that closed after its handshake for a cause other than
    /// recycling, a reload, HA or our own shutdown.
    struct LinkLoss: Codable, Sendable {
        /// The link's index and transport, as `links[]` showed them.
        var index: Int
        var transport: String
        /// The reason as the log's `link closed: …` / `link down: …` line gives it.
        var cause: String
        /// RFC 3339 UTC with milliseconds.
        var at: String
        var seconds_ago: Double
        /// Links lost since the peer's configuration was loaded (at start, or by a reload that
        /// changed it).
        var losses: Int
    }

    struct Peer: Codable, Sendable {
        var name: String
        var endpoint: String?
        /// The proxy our links to the peer go through, `host:port (forward|connect)`; nil: none.
        var proxy: String? = nil
        var configured_links: Int
        var reconnects: Int
        var last_error: LastError? = nil
        var last_link_loss: LinkLoss? = nil
        var sessions: [Session]
        /// The latest completed link handshake with the peer (RFC 3339 UTC), and how long ago.
        var latest_handshake: String? = nil
        var latest_handshake_seconds_ago: Double? = nil
        /// Links up now, over all sessions.
        var links_up: Int? = nil
        /// Wire bytes of all the peer's links since the node started (named as the metrics
        /// are, not `bytes_in`/`bytes_out`: scripts grep those for the links' counters).
        var received_bytes: UInt64? = nil
        var sent_bytes: UInt64? = nil
        /// Bytes per second over the last `rate_seconds` (sampled by the node every second).
        var received_bytes_per_second: Double? = nil
        var sent_bytes_per_second: Double? = nil
        var rate_seconds: Double? = nil
    }

    struct Tun: Codable, Sendable {
        var name: String
        var counters: TunCounters
        var dropped_queue_full: UInt64
        /// Batches of packets the data plane read for the event loop's links and dropped
        /// because the loop had fallen behind.
        var dropped_loop_batches: UInt64
        /// The links the data planes own now, in all and per plane (one plane per TUN queue).
        var data_plane_links: Int
        var plane_links: [Int]
    }

    /// `[node] registry`: the backend and whether we are connected to it.
    struct Registry: Codable, Sendable {
        var service: String
        var connected: Bool
        /// How long our ports stay surely ours without another renewal (nil before the first).
        var lease_valid_ms: Int?
    }

    /// `[ha]`: our role for each port and how it got there.
    struct HA: Codable, Sendable {
        struct Transition: Codable, Sendable {
            var role: String
            /// RFC 3339 UTC with milliseconds.
            var at: String
            var reason: String
        }
        struct Port: Codable, Sendable {
            var port: String
            /// First in our `[ha] ports` (with several: the port we hold `.want` for).
            var preferred: Bool
            var role: String
            /// The owner at the registry as last heard (this node's name while active; nil:
            /// free or not known yet).
            var owner: String?
            var transitions: Int
            /// The last transitions, oldest first (the last one: when and why the role is what it is).
            var recent: [Transition]
        }
        /// In the order of `[ha] ports`.
        var ports: [Port]
    }

    /// `byst registry serve`: clients connected and ports registered.
    struct RegistryServer: Codable, Sendable {
        var clients: Int
        var ports: Int
        var requests: UInt64
        /// Port claims refused because the client may not own the port (`[[peer]] ports`).
        var denied: UInt64
    }

    /// Totals over all peers (`byst status --summary` prints only these for a big hub).
    struct Summary: Codable, Sendable {
        var peers: Int
        /// Peers with at least one link up.
        var peers_up: Int
        var links: Int
        var sessions: Int
        var streams: Int
        var received_bytes: UInt64
        var sent_bytes: UInt64
        /// Peers whose dials fail now (no link came up since), and the first of them by name.
        var failing_peers: Int
        var failing: [String]
    }

    var node: String
    var uptime_seconds: Double
    var handshake_failures: Int
    var tun: Tun?
    var summary: Summary? = nil
    /// Every peer, or the one `--peer` asked for; empty in a summary.
    var peers: [Peer]
    var registry: Registry? = nil
    var ha: HA? = nil
    var registry_server: RegistryServer? = nil
}
