/// Every metric a node exports, with its HELP text (docs/OPERATIONS.md, "Metrics", lists the
/// same). The exposition gets its `# HELP` lines from here: swift-metrics has no help text.
///
/// **Invariants**: names follow Prometheus conventions (`byst_` prefix, base units,
/// `_total` on counters); renaming one breaks dashboards, so they are stable.
enum MetricName: String, CaseIterable, Sendable {
    case bytesReceived = "byst_peer_received_bytes_total"
    case bytesSent = "byst_peer_sent_bytes_total"
    case recordsReceived = "byst_peer_received_records_total"
    case recordsSent = "byst_peer_sent_records_total"
    case packetsReceived = "byst_peer_received_packets_total"
    case packetsSent = "byst_peer_sent_packets_total"
    case reconnects = "byst_peer_reconnects_total"
    case rtt = "byst_peer_rtt_seconds"
    case links = "byst_peer_links"
    case configuredLinks = "byst_peer_configured_links"
    case sessions = "byst_peer_sessions"
    case streams = "byst_peer_streams"
    case compressionRatio = "byst_peer_compression_ratio"
    case handshakeFailures = "byst_handshake_failures_total"
    case limitHits = "byst_limit_hits_total"
    case pendingHandshakes = "byst_pending_handshakes"
    case packetsDropped = "byst_packets_dropped_total"
    case tunReaderBatchesDropped = "byst_tun_reader_dropped_batches_total"
    case uptime = "byst_uptime_seconds"
    case haActive = "byst_ha_active"
    case haTransitions = "byst_ha_transitions_total"
    case registryConnected = "byst_registry_connected"
    case registryDenied = "byst_registry_denied_total"

    var help: String {
        switch self {
        case .bytesReceived: "Bytes received on the peer's links (TCP payload; accepted links from their first record on)."
        case .bytesSent: "Bytes sent on the peer's links (TCP payload; accepted links from their first record on)."
        case .recordsReceived: "Records received from the peer."
        case .recordsSent: "Records sent to the peer."
        case .packetsReceived: "IP packets received from the peer (before the allowed_ips source check)."
        case .packetsSent: "IP packets from the TUN interface queued for the peer."
        case .reconnects: "Dial attempts after a failed or lost link."
        case .rtt: "Keepalive round-trip time of the peer's links, one observation per answered ping."
        case .links: "Links up with the peer (all its sessions)."
        case .configuredLinks: "Links we keep up to the peer (its links setting; 0 when only the peer dials)."
        case .sessions: "Sessions with the peer, including lingering ones without links."
        case .streams: "Open streams (port-forward connections) with the peer."
        case .compressionRatio: "Sent record payload bytes after compression divided by before, over the live links (1 = nothing saved)."
        case .handshakeFailures: "Link handshakes that did not complete, by reason."
        case .limitHits: "Times a resource cap ([limits]) refused or evicted something, by cap."
        case .pendingHandshakes: "Accepted connections whose handshake has not completed yet."
        case .packetsDropped: "IP packets dropped, by reason."
        case .tunReaderBatchesDropped: "Batches of packets the data plane read from the TUN for links on the event loop (HTTP, TLS, compressing), dropped because the loop fell behind."
        case .uptime: "Seconds since the node started."
        case .haActive: "1 while this gateway owns its HA port and serves it, else 0 (only with [ha])."
        case .haTransitions: "HA role changes (standby or active), by the role entered."
        case .registryConnected: "1 while the node is connected to its port registry, else 0 (only with registry)."
        case .registryDenied: "Port claims (register, relet) the embedded registry refused because the client may not own the port ([[peer]] ports)."
        }
    }
}
