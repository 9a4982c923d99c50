import BYSTProto
import TOMLKit

/// `[limits]` (docs/OPERATIONS.md, "Limits"): every key optional, each within its range.
extension ConfigReader {
    func readLimits(_ table: TOMLTable) throws(ConfigError) -> LimitsConfig {
        let context = Context(ConfigSchema.limits)
        try checkKeys(table, context)
        var limits = LimitsConfig()
        let counts: [(String, WritableKeyPath<LimitsConfig, Int>)] = [
            ("links_per_peer", \.linksPerPeer), ("sessions_per_peer", \.sessionsPerPeer), ("pending_handshakes", \.pendingHandshakes),
            ("handshake_rate", \.handshakeRate), ("handshake_burst", \.handshakeBurst), ("handshake_sources", \.handshakeSources),
            ("accept_rate", \.acceptRate), ("accept_burst", \.acceptBurst), ("accept_backlog", \.acceptBacklog),
            ("streams_per_session", \.streamsPerSession), ("http_max_head", \.httpHeadBytes),
            ("registry_ports", \.registryPorts), ("registry_watches", \.registryWatches),
        ]
        for (key, setting) in counts {
            if let value = try integer(table, key, context) { limits[keyPath: setting] = value }
        }
        if let timeout = try duration(table, "handshake_timeout", context) { limits.handshakeTimeout = timeout }
        if let lag = try duration(table, "accept_loop_lag", context) { limits.acceptLoopLag = lag }
        if let timeout = try duration(table, "http_idle_timeout", context) { limits.httpIdleTimeout = timeout }
        // Within the schema's ranges, so they fit an Int.
        if let size = try size(table, "stream_buffer", context) { limits.streamBuffer = Int(size) }
        if let size = try size(table, "session_buffer", context) { limits.sessionBuffer = Int(size) }
        guard limits.sessionBuffer >= limits.streamBuffer else {
            let key = table["session_buffer"] == nil ? "stream_buffer" : "session_buffer"
            throw error(.invalidValue(key: "session_buffer", expected: "at least stream_buffer (\(limits.streamBuffer) bytes)",
                                      got: "\(limits.sessionBuffer) bytes"), key: key, context)
        }
        return limits
    }
}
