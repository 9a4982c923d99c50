import BYSTProto

/// Every table and key a config file may hold, with what each value must be: the one list
/// the loader checks keys against, takes its ranges and "must be …" texts from, and that a
/// test holds docs/OPERATIONS.md's reference tables to (`ConfigReferenceTests`).
enum ConfigSchema {
    static let node = ConfigTableSchema("node", array: false, [
        .text("name", "a string of 1…\(LinkHello.maxNodeNameBytes) bytes"),
        .list("listen", addresses), .list("http_listen", addresses), .list("https_listen", addresses),
        .text("http_path", "a path like \"/byst\" (letters, digits, / . _ ~ -)"),
        .text("tls_certificate", certificateChain), .text("tls_private_key", privateKey),
        // sockaddr_un.sun_path holds 108 bytes, the last one the terminating NUL.
        .text("control_socket", "a path of 1…107 bytes"),
        .text("key_store", "a non-empty path"),
        .duration("session_linger"), .duration("keepalive_interval"), .duration("dead_link_timeout"), .duration("idle_keepalive_interval"),
        .integer("max_record_payload", NodeConfig.maxRecordPayloadRange),
        .integer("compression_level", Int(RecordCompressor.levelRange.lowerBound)...Int(RecordCompressor.levelRange.upperBound)),
        .list("metrics_listen", addresses), .boolean("metrics_peers"),
        .text("registry", RegistryConfig.expected),
        .duration("registry_lease", RegistryConfig.leaseRange),
        .text("registry_tls_ca_file", caFile), .text("registry_tls_certificate", certificateChain),
        .text("registry_tls_private_key", privateKey),
        .text("registry_tls_server_name", "a DNS name (letters, digits, '-' and '.')"),
        .text("registry_user", "an etcd user name"),
        .text("registry_password_file", "the path of a file holding the etcd user's password"),
    ])

    static let tun = ConfigTableSchema("tun", array: false, [
        .text("name", "an interface name of 1-15 letters, digits, '.', '_' or '-' (not \".\" or \"..\")"),
        .list("address", "a non-empty array of interface addresses like \"10.0.1.1/24\" or \"fd00:1::1/64\""),
        .integer("mtu", TunConfig.mtuRange),
        .boolean("offload"),
        .integer("queues", TunConfig.queuesRange),
        .boolean("data_plane"),
    ])

    static let peer = ConfigTableSchema("peer", array: true, [
        .text("name", peerName),
        .text("key", "the name of a key in the key store (\(peerName))"),
        .text("endpoint", Endpoint.expected),
        .integer("links", PeerConfig.linksRange),
        .list("allow_targets", "an array of \(TargetRule.expected) strings"),
        .list("allowed_ips", "an array of IP prefix strings like \"10.0.2.0/24\" or \"fd00:2::/64\""),
        .text("http_mode", oneOf(HTTPMode.allCases.map(\.rawValue))),
        .text("http_proxy", ProxyConfig.expected + " or \"env\""),
        .text("proxy_mode", oneOf(ProxyConfig.Mode.allCases.map(\.rawValue))),
        .text("http_proxy_credentials_file", "the path of a file (mode 0600) holding the proxy's user:password or DOMAIN\\user:password"),
        .text("tls_ca_file", caFile),
        .list("tls_pin_sha256", "an array of \"sha256//<base64>\" strings"),
        .text("tls_server_name", "a DNS name"),
        .duration("recycle_after"),
        .size("recycle_bytes", nil),
        .text("compression", oneOf(CompressionScope.allCases.map(\.rawValue))),
        .boolean("packet_striping"),
        .list("ports", registryNames),
        .list("gateways", registryNames),
        .text("ha_port", "one of [ha] ports: the HA port whose gateway serves this peer"),
        .tables("uplinks", "an array of inline tables like { name = \"dsl\", bind = \"192.0.2.10\", links = 2 } or { interface = \"wwan0\" }"),
    ])

    /// One entry of `[[peer]] uplinks` (an inline table).
    static let uplink = ConfigTableSchema("uplinks", array: true, [
        .text("name", peerName),
        .text("bind", "an IPv4 or IPv6 address of this machine, like \"192.0.2.10\""),
        .text("interface", "an interface name of 1-15 letters, digits, '.', '_' or '-'"),
        .integer("links", PeerConfig.linksRange),
    ])

    static let forward = ConfigTableSchema("forward", array: true, [
        .text("listen", HostPort.expected), .text("peer", "the name of a [[peer]]"), .text("target", HostPort.expected),
    ])

    static let ha = ConfigTableSchema("ha", array: false, [
        .text("port", haPortName),
        .list("ports", "a non-empty array of distinct port names (each \(haPortName)), this gateway's preferred first"),
        .list("advertise", "a non-empty array of the endpoints branches dial while this gateway is active (\"byst://…\", \"http(s)://…\")"),
        .list("address", HAAddress.expected),
        .list("on_active", notifyCommand), .list("on_standby", notifyCommand),
        .duration("notify_timeout", HAConfig.notifyTimeoutRange),
    ])

    static let haPortName = "a port name of 1…255 bytes without control characters, not ending in \"\(PortPreference.wantSuffix)\""

    static let limits = ConfigTableSchema("limits", array: false, [
        .integer("links_per_peer", LimitsConfig.linksPerPeerRange),
        .integer("sessions_per_peer", LimitsConfig.sessionsPerPeerRange),
        .integer("pending_handshakes", LimitsConfig.pendingHandshakesRange),
        .duration("handshake_timeout", LimitsConfig.handshakeTimeoutRange),
        .integer("handshake_rate", LimitsConfig.handshakeRateRange),
        .integer("handshake_burst", LimitsConfig.handshakeBurstRange),
        .integer("handshake_sources", LimitsConfig.handshakeSourcesRange),
        .integer("accept_rate", LimitsConfig.acceptRateRange),
        .integer("accept_burst", LimitsConfig.acceptBurstRange),
        .integer("accept_backlog", LimitsConfig.acceptBacklogRange),
        .duration("accept_loop_lag", LimitsConfig.acceptLoopLagRange),
        .integer("streams_per_session", LimitsConfig.streamsPerSessionRange),
        .size("stream_buffer", LimitsConfig.streamBufferRange),
        .size("session_buffer", LimitsConfig.sessionBufferRange),
        .integer("http_max_head", LimitsConfig.httpHeadBytesRange),
        .duration("http_idle_timeout", LimitsConfig.httpIdleTimeoutRange),
        .integer("registry_ports", LimitsConfig.registryRange),
        .integer("registry_watches", LimitsConfig.registryRange),
    ])

    /// In the order an unknown table's error lists them.
    static let tables = [node, tun, ha, limits, peer, forward]

    private static let addresses = "an array of \(HostPort.expected) strings"
    private static let certificateChain = "the path of a PEM certificate chain"
    private static let privateKey = "the path of a PEM private key"
    private static let caFile = "the path of a PEM file of CA certificates"
    private static let peerName = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
    private static let notifyCommand = "a non-empty array of strings: a program's absolute path and its arguments (no shell)"
    private static let registryNames = "an array of names of 1…255 bytes without control characters"

    private static func oneOf(_ values: [String]) -> String { "one of \(values.map(\.configQuoted).joined(separator: ", "))" }
}

/// One `[name]` or `[[name]]` table of the config.
struct ConfigTableSchema: Sendable {
    let name: String
    let isArray: Bool
    let keys: [ConfigKey]

    init(_ name: String, array: Bool, _ keys: [ConfigKey]) {
        self.name = name
        self.isArray = array
        self.keys = keys
    }

    /// `[node]`, `[[peer]]`.
    var header: String { isArray ? "[[\(name)]]" : "[\(name)]" }
    var keyNames: [String] { keys.map(\.name) }

    /// The key named `name`. Every key the loader reads is listed, so a miss is a bug in the
    /// loader, not in the file: it still gets a usable message.
    subscript(name: String) -> ConfigKey {
        if let key = keys.first(where: { $0.name == name }) { return key }
        assertionFailure("config key \(name) is not in the schema of \(header)")
        return .text(name, "a valid value")
    }
}

/// One key: its name and what its value must be.
struct ConfigKey: Sendable {
    enum Kind: Sendable {
        /// A string; `expected` says which.
        case text
        /// An array of strings.
        case list
        /// An array of inline tables.
        case tables
        case integer(ClosedRange<Int>)
        case boolean
        /// A duration string or whole seconds, within the range when there is one.
        case duration(ClosedRange<Duration>?)
        /// Bytes, or a string like "4MiB"; positive, within the range when there is one.
        case size(ClosedRange<Int>?)
    }

    let name: String
    let kind: Kind
    /// What errors say the value must be: "<key> must be <expected>, got …".
    let expected: String

    static func text(_ name: String, _ expected: String) -> ConfigKey { ConfigKey(name: name, kind: .text, expected: expected) }
    static func list(_ name: String, _ expected: String) -> ConfigKey { ConfigKey(name: name, kind: .list, expected: expected) }
    static func tables(_ name: String, _ expected: String) -> ConfigKey { ConfigKey(name: name, kind: .tables, expected: expected) }
    static func boolean(_ name: String) -> ConfigKey { ConfigKey(name: name, kind: .boolean, expected: "true or false") }

    static func integer(_ name: String, _ range: ClosedRange<Int>) -> ConfigKey {
        ConfigKey(name: name, kind: .integer(range), expected: "an integer \(range.lowerBound)…\(range.upperBound)")
    }

    static func duration(_ name: String, _ range: ClosedRange<Duration>? = nil) -> ConfigKey {
        ConfigKey(name: name, kind: .duration(range),
                  expected: range.map { "\($0.lowerBound.configText)…\($0.upperBound.configText)" } ?? Duration.configExpected)
    }

    static func size(_ name: String, _ range: ClosedRange<Int>?) -> ConfigKey {
        let expected = range.map { "a size of \(sizeText($0.lowerBound))…\(sizeText($0.upperBound)): bytes, or a string like \"4MiB\"" }
            ?? "a positive integer or a size like \"512MiB\" or \"1GiB\""
        return ConfigKey(name: name, kind: .size(range), expected: expected)
    }

    /// `4MiB`, `1GiB`, or the number of bytes when it is not a whole unit.
    static func sizeText(_ bytes: Int) -> String {
        if bytes % (1 << 30) == 0 { return "\(bytes >> 30)GiB" }
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
        if bytes % (1 << 10) == 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)"
    }
}
