import BYSTProto
import TOMLKit

/// `[limits]` (docs/OPERATIONS.md, "Limits"): every key optional, each within its range.
extension ConfigReader {
    func readLimits(_ table: TOMLTable) throws(ConfigError) -> LimitsConfig {
        let context = Context(table: "limits", index: nil, section: "[limits]", headersMatch: true)
        try checkKeys(table, allowed: ["links_per_peer", "sessions_per_peer", "pending_handshakes", "handshake_timeout",
                                       "handshake_rate", "handshake_burst", "handshake_sources", "accept_rate", "accept_burst",
                                       "accept_backlog", "accept_loop_lag", "streams_per_session",
                                       "stream_buffer", "session_buffer", "http_max_head", "registry_ports",
                                       "registry_watches"], context)
        var limits = LimitsConfig()
        func count(_ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            try integer(table, key, in: range, expected: "an integer \(range.lowerBound)…\(range.upperBound)", context)
        }
        if let value = try count("links_per_peer", LimitsConfig.linksPerPeerRange) { limits.linksPerPeer = value }
        if let value = try count("sessions_per_peer", LimitsConfig.sessionsPerPeerRange) { limits.sessionsPerPeer = value }
        if let value = try count("pending_handshakes", LimitsConfig.pendingHandshakesRange) { limits.pendingHandshakes = value }
        if let value = try count("handshake_rate", LimitsConfig.handshakeRateRange) { limits.handshakeRate = value }
        if let value = try count("handshake_burst", LimitsConfig.handshakeBurstRange) { limits.handshakeBurst = value }
        if let value = try count("handshake_sources", LimitsConfig.handshakeSourcesRange) { limits.handshakeSources = value }
        if let value = try count("accept_rate", LimitsConfig.acceptRateRange) { limits.acceptRate = value }
        if let value = try count("accept_burst", LimitsConfig.acceptBurstRange) { limits.acceptBurst = value }
        if let value = try count("accept_backlog", LimitsConfig.acceptBacklogRange) { limits.acceptBacklog = value }
        if let value = try count("streams_per_session", LimitsConfig.streamsPerSessionRange) { limits.streamsPerSession = value }
        if let value = try count("http_max_head", LimitsConfig.httpHeadBytesRange) { limits.httpHeadBytes = value }
        if let value = try count("registry_ports", LimitsConfig.registryRange) { limits.registryPorts = value }
        if let value = try count("registry_watches", LimitsConfig.registryRange) { limits.registryWatches = value }
        func within(_ key: String, _ range: ClosedRange<Duration>) throws(ConfigError) -> Duration? {
            guard let value = try duration(table, key, context) else { return nil }
            guard range.contains(value) else {
                throw error(.invalidValue(key: key, expected: "\(range.lowerBound.configText)…\(range.upperBound.configText)",
                                          got: value.configText), key: key, context)
            }
            return value
        }
        if let timeout = try within("handshake_timeout", LimitsConfig.handshakeTimeoutRange) { limits.handshakeTimeout = timeout }
        if let lag = try within("accept_loop_lag", LimitsConfig.acceptLoopLagRange) { limits.acceptLoopLag = lag }
        if let size = try byteSize(table, "stream_buffer", LimitsConfig.streamBufferRange, context) { limits.streamBuffer = size }
        if let size = try byteSize(table, "session_buffer", LimitsConfig.sessionBufferRange, context) { limits.sessionBuffer = size }
        guard limits.sessionBuffer >= limits.streamBuffer else {
            let key = table["session_buffer"] == nil ? "stream_buffer" : "session_buffer"
            throw error(.invalidValue(key: "session_buffer", expected: "at least stream_buffer (\(limits.streamBuffer) bytes)",
                                      got: "\(limits.sessionBuffer) bytes"), key: key, context)
        }
        return limits
    }

    /// An integer number of bytes, or a string like "4MiB", within `range`.
    private func byteSize(_ table: TOMLTable, _ key: String, _ range: ClosedRange<Int>, _ context: Context) throws(ConfigError) -> Int? {
        guard let value = table[key] else { return nil }
        let expected = "a size of \(Self.sizeText(range.lowerBound))…\(Self.sizeText(range.upperBound)): bytes, or a string like \"4MiB\""
        let bytes = value.int.flatMap { $0 > 0 ? UInt64($0) : nil } ?? value.string.flatMap(parseByteSize)
        guard let bytes, bytes <= UInt64(range.upperBound), range.contains(Int(bytes)) else {
            throw error(.invalidValue(key: key, expected: expected, got: describeType(value)), key: key, context)
        }
        return Int(bytes)
    }

    private static func sizeText(_ bytes: Int) -> String {
        if bytes % (1 << 30) == 0 { return "\(bytes >> 30)GiB" }
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
        if bytes % (1 << 10) == 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)"
    }
}
