import BYSTProto
import Glibc
import TOMLKit

/// Reading a config file into a `NodeConfig`:
///
///     bytes ─▶ UTF-8 text without NUL ─▶ TOMLKit tree ─▶ per-table schema check ─▶ cross-checks
///               (ConfigError.notText)      (.syntax, with     (unknown keys, types,    (duplicates,
///                                           line:column)       ranges, defaults)        forward peers,
///                                                                                       allowed_ips)
///
/// Semantic errors get their line from `ConfigSource`, which finds the key in the text.
extension NodeConfig {
    /// Reads and validates the config file at `path`.
    public static func load(path: String) throws(ConfigError) -> NodeConfig {
        let config = try parse(readConfigText(path: path), file: path)
        try checkSecretsProtected(config, path: path)
        return config
    }

    /// A config that holds passwords (`http_proxy` user info) must be as private as the key
    /// store: not readable or writable by group or others.
    static func checkSecretsProtected(_ config: NodeConfig, path: String) throws(ConfigError) {
        guard let peer = config.peers.first(where: { $0.http.proxy?.password != nil }) else { return }
        let mode: mode_t?
        do throws(AtomicFile.Failure) { mode = try AtomicFile.mode(path) } catch {
            throw ConfigError(file: path, reason: .unreadable(operation: error.operation, detail: error.reason))
        }
        guard let mode, mode & 0o077 != 0 else { return }
        throw ConfigError(file: path, section: "[[peer]] \(peer.name.configQuoted)", reason: .exposedSecret(
            what: "http_proxy holds a password", detail: "the file is readable or writable by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)"))
    }

    /// Validates `text`; `file` only names the source in errors.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> NodeConfig {
        try ConfigReader(text: text, file: file).read()
    }
}

/// The file as text, or the `ConfigError` saying why it cannot be (missing, unreadable, not UTF-8).
func readConfigText(path: String) throws(ConfigError) -> String {
    let bytes: [UInt8]?
    do throws(AtomicFile.Failure) { bytes = try AtomicFile.read(path, limit: 1 << 20) } catch {
        throw ConfigError(file: path, reason: .unreadable(operation: error.operation, detail: error.reason))
    }
    guard let bytes else {
        throw ConfigError(file: path, reason: .unreadable(operation: "open", detail: "No such file or directory"))
    }
    if let text = String(validating: bytes, as: UTF8.self) { return text }
    // Name the first line that is not UTF-8.
    var line = 1
    for piece in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        if String(validating: piece, as: UTF8.self) == nil { break }
        line += 1
    }
    throw ConfigError(file: path, line: line, reason: .notText("not UTF-8 text"))
}

extension AtomicFile.Failure {
    /// The system's message for `errno`, without the path.
    var reason: String { String(cString: strerror(errno)) }
}

/// One pass over one document; every check throws the first problem it finds.
struct ConfigReader {
    let text: String
    let file: String
    let source: ConfigSource

    /// Where a problem sits: which table, and how `ConfigError.section` names it.
    struct Context {
        var schema: ConfigTableSchema
        /// The `[name]`/`[[name]]` whose lines errors point at.
        var table: String
        /// Errors point at this key's line instead of the key's own (keys of an inline table
        /// have no line of their own: they point at the line holding the table).
        var lineKey: String?
        /// Position in the `[[table]]` array; nil for `[node]`.
        var index: Int?
        var section: String
        /// Whether the `index`-th `[[table]]` header in the text is this element (false
        /// when the array is written inline, so the header count differs).
        var headersMatch: Bool
        /// The keys a table has, once `checkKeys` read them: asking that table for any other
        /// skips TOMLKit (a hub's 10,000 peers each ask for some 20 keys they do not set).
        var knownKeys: (table: ObjectIdentifier, keys: Set<String>)?

        /// A `[name]` table, which appears once.
        init(_ schema: ConfigTableSchema) {
            self.init(schema: schema, index: nil, section: schema.header, headersMatch: true)
        }

        init(schema: ConfigTableSchema, index: Int?, section: String, headersMatch: Bool) {
            self.schema = schema
            self.table = schema.name
            self.index = index
            self.section = section
            self.headersMatch = headersMatch
        }
    }

    init(text: String, file: String) {
        self.text = text
        self.file = file
        self.source = ConfigSource(text)
    }

    func read() throws(ConfigError) -> NodeConfig {
        if let nul = source.lines.firstIndex(where: { $0.utf8.contains(0) }) {
            throw ConfigError(file: file, line: nul + 1, reason: .notText("contains a NUL byte"))
        }
        // Bad TOML that would abort inside TOMLKit rather than throw (TOMLKitGuard).
        if let problem = TOMLKitGuard.firstProblem(in: text) {
            throw ConfigError(file: file, line: problem.line, column: problem.column, reason: .syntax(problem.message))
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(file: file, line: error.source.begin.line, column: error.source.begin.column,
                              reason: .syntax(error.description))
        } catch {
            throw ConfigError(file: file, reason: .syntax("\(error)"))
        }
        if let unknown = firstUnknownKey(in: root.keys, allowed: ConfigSchema.tables.map(\.name), context: nil) {
            throw ConfigError(file: file, line: source.line(ofTopLevel: unknown), section: nil,
                              reason: .unknownKey(unknown, allowed: ConfigSchema.tables.map(\.header)))
        }
        guard let nodeTable = try singleTable(root, ConfigSchema.node) else { throw ConfigError(file: file, reason: .missingTable("[node]")) }
        var config = try readNode(nodeTable)
        if let table = try singleTable(root, ConfigSchema.tun) { config.tun = try readTun(table) }

        let peerTables = try arrayOfTables(root, "peer")
        var peerLines: [String: Int?] = [:]
        // Cryptokey routing needs one peer per prefix.
        var routes: [IPPrefix: (peer: String, line: Int?)] = [:]
        for (index, table) in peerTables.enumerated() {
            let context = arrayContext(ConfigSchema.peer, index: index, count: peerTables.count, name: table["name"]?.string)
            let peer = try readPeer(table, context)
            if let first = peerLines[peer.name] {
                throw error(.duplicate(what: "peer name", value: peer.name.configQuoted, firstLine: first), key: "name", context)
            }
            peerLines[peer.name] = line(of: "name", context)
            for prefix in peer.allowedIPs {
                if let first = routes[prefix] {
                    throw error(.alreadyRouted(prefix: prefix.description, peer: first.peer, firstLine: first.line),
                                key: "allowed_ips", context)
                }
                routes[prefix] = (peer.name, line(of: "allowed_ips", context))
            }
            config.peers.append(peer)
        }

        let forwardTables = try arrayOfTables(root, "forward")
        var forwardLines: [HostPort: Int?] = [:]
        for (index, table) in forwardTables.enumerated() {
            let context = arrayContext(ConfigSchema.forward, index: index, count: forwardTables.count, name: nil)
            let forward = try readForward(table, context)
            if let first = forwardLines[forward.listen] {
                throw error(.duplicate(what: "forward listen address", value: forward.listen.description.configQuoted,
                                       firstLine: first), key: "listen", context)
            }
            forwardLines[forward.listen] = line(of: "listen", context)
            guard config.peer(named: forward.peer) != nil else { throw error(.undefinedPeer(forward.peer), key: "peer", context) }
            config.forwards.append(forward)
        }
        if let table = try singleTable(root, ConfigSchema.limits) { config.limits = try readLimits(table) }
        if let table = try singleTable(root, ConfigSchema.ha) { config.ha = try readHA(table) }
        try checkRegistryUse(config)
        try checkPortGateways(config)
        try checkPeerHAPorts(config)
        return config
    }

    /// `[ha]` and `port:` endpoints need a registry; `peer:NAME` must name a peer we dial.
    private func checkRegistryUse(_ config: NodeConfig) throws(ConfigError) {
        let nodeContext = Context(ConfigSchema.node)
        if case .peer(let name)? = config.registry?.service {
            guard let peer = config.peer(named: name) else { throw error(.undefinedPeer(name), key: "registry", nodeContext) }
            guard let endpoint = peer.endpoint, endpoint.portName == nil else {
                throw error(.invalidValue(key: "registry", expected: "a peer with a byst:// or http(s):// endpoint (we dial the registry)",
                                          got: "peer \(name.configQuoted) with \(peer.endpoint.map { "endpoint \($0.description.configQuoted)" } ?? "no endpoint")"),
                            key: "registry", nodeContext)
            }
        }
        guard config.registry == nil else { return }
        if config.ha != nil {
            let context = Context(ConfigSchema.ha)
            let key = config.ha?.ports.count == 1 ? "port" : "ports"
            throw error(.needs(key: key, value: config.ha.map { $0.ports.count == 1 ? $0.ports[0].configQuoted : "[\($0.ports.map(\.configQuoted).joined(separator: ", "))]" },
                               what: Self.registryNeeded), key: key, context)
        }
        let peerTables = source.arrayCount("peer")
        for (index, peer) in config.peers.enumerated() where peer.endpoint?.portName != nil {
            let context = Context(schema: ConfigSchema.peer, index: index, section: "[[peer]] \(peer.name.configQuoted)",
                                  headersMatch: peerTables == config.peers.count)
            throw error(.needs(key: "endpoint", value: peer.endpoint?.description.configQuoted, what: Self.registryNeeded),
                        key: "endpoint", context)
        }
    }

    /// A `port:NAME` peer names the gateways that may serve it (deny by default): whoever
    /// else takes the port at the registry is ignored.
    private func checkPortGateways(_ config: NodeConfig) throws(ConfigError) {
        let peerTables = source.arrayCount("peer")
        for (index, peer) in config.peers.enumerated() where peer.endpoint?.portName != nil && peer.gateways.isEmpty {
            let context = Context(schema: ConfigSchema.peer, index: index, section: "[[peer]] \(peer.name.configQuoted)",
                                  headersMatch: peerTables == config.peers.count)
            throw error(.needs(key: "endpoint", value: peer.endpoint?.description.configQuoted,
                               what: "gateways = [\"…\"]: the gateways that may serve it, by their names at the registry ([[peer]] names at `byst registry serve`, [node] names with etcd); any other owner of the port is ignored"),
                        key: "gateways", context)
        }
    }

    /// A peer's `ha_port` names one of our `[ha] ports`.
    private func checkPeerHAPorts(_ config: NodeConfig) throws(ConfigError) {
        let peerTables = source.arrayCount("peer")
        for (index, peer) in config.peers.enumerated() {
            guard let haPort = peer.haPort, config.ha?.ports.contains(haPort) != true else { continue }
            let context = Context(schema: ConfigSchema.peer, index: index, section: "[[peer]] \(peer.name.configQuoted)",
                                  headersMatch: peerTables == config.peers.count)
            throw error(.invalidValue(key: "ha_port", expected: "one of [ha] ports (\(config.ha.map { $0.ports.map(\.configQuoted).joined(separator: ", ") } ?? "no [ha] table"))",
                                      got: haPort.configQuoted), key: "ha_port", context)
        }
    }

    static let registryNeeded = "a registry: [node] registry = \"peer:NAME\" or \"etcd://host:port,…\""

    private func readHA(_ table: TOMLTable) throws(ConfigError) -> HAConfig {
        let context = Context(ConfigSchema.ha)
        try checkKeys(table, context)
        let ports: [String]
        switch (try optionalString(table, "port", context), try stringArray(table, "ports", context)) {
        case (let port?, nil):
            ports = [port]
        case (nil, let list?):
            guard !list.isEmpty else { throw invalid("ports", got: "an empty array", context) }
            ports = list
        case (_?, _?):
            throw error(.invalidValue(key: "ports", expected: "either port or ports, not both", got: "both"), key: "ports", context)
        case (nil, nil):
            throw error(.missingKey("ports"), key: nil, context)
        }
        let key = table["ports"] == nil ? "port" : "ports"
        for (index, port) in ports.enumerated() {
            guard HAConfig.isValidPortName(port) else { throw invalid(key, got: port.configQuoted, context) }
            guard !ports[..<index].contains(port) else {
                throw error(.duplicate(what: "port", value: port.configQuoted, firstLine: nil), key: key, context)
            }
        }
        guard let texts = try stringArray(table, "advertise", context) else {
            throw error(.missingKey("advertise"), key: nil, context)
        }
        var advertise: [Endpoint] = []
        for text in texts {
            let endpoint = try parsed(Endpoint.parse(text), key: "advertise", value: text, context)
            guard endpoint.portName == nil else { throw invalid("advertise", got: text.configQuoted, context) }
            advertise.append(endpoint)
        }
        guard !advertise.isEmpty else { throw invalid("advertise", got: "an empty array", context) }
        var ha = HAConfig(ports: ports, advertise: advertise)
        try readHANotify(table, into: &ha, context)
        ha.addresses = try readHAAddresses(table, ports: ports, context)
        return ha
    }

    // MARK: Tables

    private func readNode(_ table: TOMLTable) throws(ConfigError) -> NodeConfig {
        let context = Context(ConfigSchema.node)
        try checkKeys(table, context)
        let name = try requiredString(table, "name", context)
        guard LinkHello.isValidNodeName(name) else { throw invalid("name", got: name.configQuoted, context) }
        var config = NodeConfig(name: name)

        var seen: Set<HostPort> = []
        func addresses(_ key: String) throws(ConfigError) -> [HostPort] {
            var list: [HostPort] = []
            for text in try stringArray(table, key, context) ?? [] {
                let address = try parsed(HostPort.parse(text), key: key, value: text, context)
                guard seen.insert(address).inserted else {
                    throw error(.duplicate(what: "listen address", value: text.configQuoted, firstLine: nil), key: key, context)
                }
                list.append(address)
            }
            return list
        }
        config.listen = try addresses("listen")
        config.http.listen = try addresses("http_listen")
        config.http.tlsListen = try addresses("https_listen")
        config.metricsListen = try addresses("metrics_listen")
        if let flag = try boolean(table, "metrics_peers", context) { config.metricsPeers = flag }
        if let path = try optionalString(table, "http_path", context) {
            guard isSafePath(path) else { throw invalid("http_path", got: path.configQuoted, context) }
            config.http.path = path
        }
        config.http.tlsCertificate = try optionalString(table, "tls_certificate", context)
        config.http.tlsPrivateKey = try optionalString(table, "tls_private_key", context)
        if !config.http.tlsListen.isEmpty {
            for key in ["tls_certificate", "tls_private_key"] where table[key] == nil {
                throw error(.invalidValue(key: key, expected: "set when https_listen is (the server's TLS identity)", got: "nothing"),
                            key: "https_listen", context)
            }
        }
        if let path = try optionalString(table, "control_socket", context) {
            guard path.utf8.count <= 107 else { throw invalid("control_socket", got: path.configQuoted, context) }
            config.controlSocket = path
        }
        if let path = try optionalString(table, "key_store", context) { config.keyStore = path }
        if let linger = try duration(table, "session_linger", context) { config.sessionLinger = linger }
        if let interval = try duration(table, "keepalive_interval", context) { config.keepaliveInterval = interval }
        if let timeout = try duration(table, "dead_link_timeout", context) { config.deadLinkTimeout = timeout }
        guard config.deadLinkTimeout > config.keepaliveInterval else {
            let key = table["dead_link_timeout"] == nil ? "keepalive_interval" : "dead_link_timeout"
            throw error(.invalidValue(key: "dead_link_timeout",
                                      expected: "longer than keepalive_interval (\(config.keepaliveInterval.configText))",
                                      got: config.deadLinkTimeout.configText), key: key, context)
        }
        if let interval = try duration(table, "idle_keepalive_interval", context) {
            guard interval >= config.keepaliveInterval else {
                throw error(.invalidValue(key: "idle_keepalive_interval",
                                          expected: "at least keepalive_interval (\(config.keepaliveInterval.configText))",
                                          got: interval.configText), key: "idle_keepalive_interval", context)
            }
            config.idleKeepaliveInterval = interval
        } else {
            config.idleKeepaliveInterval = max(config.idleKeepaliveInterval, config.keepaliveInterval)
        }
        if let size = try integer(table, "max_record_payload", context) { config.maxRecordPayload = size }
        config.registry = try readRegistry(table, context)
        if let level = try integer(table, "compression_level", context) { config.compressionLevel = level }
        return config
    }

    private func readTun(_ table: TOMLTable) throws(ConfigError) -> TunConfig {
        let context = Context(ConfigSchema.tun)
        try checkKeys(table, context)
        let name = try optionalString(table, "name", context) ?? TunConfig.defaultName
        guard TunConfig.isValidInterfaceName(name) else { throw invalid("name", got: name.configQuoted, context) }
        guard let texts = try stringArray(table, "address", context) else { throw error(.missingKey("address"), key: nil, context) }
        guard !texts.isEmpty else { throw invalid("address", got: "an empty array", context) }
        var addresses: [IPPrefix] = []
        for text in texts {
            let address = try parsed(IPPrefix.parseInterfaceAddress(text), key: "address", value: text, context)
            guard !addresses.contains(where: { $0.address == address.address }) else {
                throw error(.duplicate(what: "address", value: text.configQuoted, firstLine: nil), key: "address", context)
            }
            addresses.append(address)
        }
        var tun = TunConfig(name: name, addresses: addresses)
        if let mtu = try integer(table, "mtu", context) { tun.mtu = mtu }
        if let count = try integer(table, "queues", context) { tun.queues = count }
        if let flag = try boolean(table, "offload", context) { tun.offload = flag }
        if let flag = try boolean(table, "data_plane", context) { tun.dataPlane = flag }
        if let ipv6 = addresses.first(where: \.isIPv6), tun.mtu < TunConfig.minimumIPv6MTU {
            let expected = "an integer \(TunConfig.minimumIPv6MTU)…\(TunConfig.mtuRange.upperBound) with an IPv6 address (\(ipv6))"
            throw error(.invalidValue(key: "mtu", expected: expected, got: "\(tun.mtu)"), key: "mtu", context)
        }
        return tun
    }

    private func readPeer(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> PeerConfig {
        var context = context
        context.knownKeys = (ObjectIdentifier(table), try checkKeys(table, context))
        let name = try requiredString(table, "name", context)
        guard KeyStore.isValidName(name) else { throw invalid("name", got: name.configQuoted, context) }
        let key = try requiredString(table, "key", context)
        guard KeyStore.isValidName(key) else { throw invalid("key", got: key.configQuoted, context) }
        var peer = PeerConfig(name: name, key: key)
        if let text = try optionalString(table, "endpoint", context) {
            peer.endpoint = try parsed(Endpoint.parse(text), key: "endpoint", value: text, context)
        }
        if let links = try integer(table, "links", context) { peer.links = links }
        for text in try stringArray(table, "allow_targets", context) ?? [] {
            peer.allowTargets.append(try parsed(TargetRule.parse(text), key: "allow_targets", value: text, context))
        }
        for text in try stringArray(table, "allowed_ips", context) ?? [] {
            let prefix = try parsed(IPPrefix.parseAllowedIP(text), key: "allowed_ips", value: text, context)
            guard !peer.allowedIPs.contains(prefix) else {
                throw error(.duplicate(what: "allowed_ips prefix", value: prefix.description.configQuoted, firstLine: nil),
                            key: "allowed_ips", context)
            }
            peer.allowedIPs.append(prefix)
        }
        if let text = try optionalString(table, "compression", context) {
            guard let scope = CompressionScope(rawValue: text) else { throw invalid("compression", got: text.configQuoted, context) }
            peer.compression = scope
        }
        if let flag = try boolean(table, "packet_striping", context) { peer.packetStriping = flag }
        try readHTTPClient(table, into: &peer, context)
        try readRegistryRights(table, into: &peer, context)
        try readUplinks(table, into: &peer, context)
        return peer
    }

    /// `ports` (what the peer may own at our embedded registry) and `gateways` (who may serve
    /// our `port:NAME` endpoint): both deny by default, so a `port:NAME` peer must list its gateways.
    private func readRegistryRights(_ table: TOMLTable, into peer: inout PeerConfig, _ context: Context) throws(ConfigError) {
        for (key, path) in [("ports", \PeerConfig.ports), ("gateways", \PeerConfig.gateways)] {
            for name in try stringArray(table, key, context) ?? [] {
                guard RegistryService.isValidName(name) else { throw invalid(key, got: name.configQuoted, context) }
                guard !peer[keyPath: path].contains(name) else {
                    throw error(.duplicate(what: key == "ports" ? "port" : "gateway", value: name.configQuoted, firstLine: nil), key: key, context)
                }
                peer[keyPath: path].append(name)
            }
        }
        if let haPort = try optionalString(table, "ha_port", context) {
            guard HAConfig.isValidPortName(haPort) else { throw invalid("ha_port", got: haPort.configQuoted, context) }
            peer.haPort = haPort
        }
        if peer.endpoint?.portName == nil, lookup(table, "gateways", context) != nil {
            throw error(.invalidValue(key: "gateways", expected: "set only with a port:NAME endpoint",
                                      got: peer.endpoint.map { "endpoint \($0.description.configQuoted)" } ?? "no endpoint"), key: "gateways", context)
        }
    }

    /// The HTTP transport keys of a `[[peer]]`: only with an http(s) endpoint, TLS keys only
    /// with https.
    private func readHTTPClient(_ table: TOMLTable, into peer: inout PeerConfig, _ context: Context) throws(ConfigError) {
        let endpoint = peer.endpoint?.httpEndpoint
        let httpKeys = ["http_mode", "http_proxy", "proxy_mode", "http_proxy_credentials_file", "tls_ca_file", "tls_pin_sha256", "tls_server_name"]
        // A port:NAME peer may be published with any endpoint: its HTTP keys apply when it is http(s).
        let followsPort = peer.endpoint?.portName != nil
        if endpoint == nil, !followsPort, let key = httpKeys.first(where: { lookup(table, $0, context) != nil }) {
            throw error(.invalidValue(key: key, expected: "set only with an http:// or https:// endpoint",
                                      got: peer.endpoint.map { "endpoint \($0.description.configQuoted)" } ?? "no endpoint"), key: key, context)
        }
        if let endpoint {
            peer.recycle = .httpDefault
            if !endpoint.tls, let key = httpKeys.filter({ $0.hasPrefix("tls_") }).first(where: { lookup(table, $0, context) != nil }) {
                throw error(.invalidValue(key: key, expected: "set only with an https:// endpoint", got: "endpoint \(endpoint.description.configQuoted)"),
                            key: key, context)
            }
        }
        if let text = try optionalString(table, "http_mode", context) {
            guard let mode = HTTPMode(rawValue: text) else { throw invalid("http_mode", got: text.configQuoted, context) }
            peer.http.mode = mode
        }
        var proxyMode: ProxyConfig.Mode = endpoint?.tls == true ? .connect : .forward
        if let text = try optionalString(table, "proxy_mode", context) {
            guard let mode = ProxyConfig.Mode(rawValue: text) else { throw invalid("proxy_mode", got: text.configQuoted, context) }
            guard lookup(table, "http_proxy", context) != nil else {
                throw error(.invalidValue(key: "proxy_mode", expected: "set only with http_proxy", got: text.configQuoted), key: "proxy_mode", context)
            }
            if mode == .forward, endpoint?.tls == true {
                throw error(.invalidValue(key: "proxy_mode", expected: "\"connect\" with an https:// endpoint (a forward proxy cannot speak TLS for us)",
                                          got: text.configQuoted), key: "proxy_mode", context)
            }
            proxyMode = mode
        }
        if let text = try optionalString(table, "http_proxy", context) {
            if text == "env" {
                let explicitMode = lookup(table, "proxy_mode", context) == nil ? nil : proxyMode
                switch EnvironmentProxy.fromProcess(explicitMode: explicitMode) {
                case .success(let environment): peer.http.environmentProxy = environment
                case .failure(let problem):
                    throw error(.invalidValue(key: "http_proxy", expected: "\(problem.variable) in the environment to be \(ProxyConfig.expected)",
                                              got: "\"env\""), key: "http_proxy", context)
                }
            } else {
                peer.http.proxy = try parsed(ProxyConfig.parse(text, mode: proxyMode), key: "http_proxy", value: text, context)
            }
        }
        if let file = try optionalString(table, "http_proxy_credentials_file", context) {
            guard lookup(table, "http_proxy", context) != nil else {
                throw error(.invalidValue(key: "http_proxy_credentials_file", expected: "set only with http_proxy", got: file.configQuoted),
                            key: "http_proxy_credentials_file", context)
            }
            if peer.http.proxy?.username != nil {
                throw error(.invalidValue(key: "http_proxy_credentials_file", expected: "no user info in http_proxy as well (one place for the credentials)",
                                          got: file.configQuoted), key: "http_proxy_credentials_file", context)
            }
            peer.http.proxyCredentialsFile = file
        }
        peer.http.tlsCAFile = try optionalString(table, "tls_ca_file", context)
        peer.http.tlsServerName = try optionalString(table, "tls_server_name", context)
        for text in try stringArray(table, "tls_pin_sha256", context) ?? [] {
            peer.http.tlsPins.append(try parsed(parseTLSPin(text), key: "tls_pin_sha256", value: text, context))
        }
        if let after = try duration(table, "recycle_after", context) { peer.recycle.after = after }
        if let bytes = try size(table, "recycle_bytes", context) { peer.recycle.bytes = bytes }
    }

    private func readForward(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> ForwardConfig {
        try checkKeys(table, context)
        let listenText = try requiredString(table, "listen", context)
        let listen = try parsed(HostPort.parse(listenText), key: "listen", value: listenText, context)
        let peer = try requiredString(table, "peer", context)
        let targetText = try requiredString(table, "target", context)
        let target = try parsed(HostPort.parse(targetText), key: "target", value: targetText, context)
        return ForwardConfig(listen: listen, peer: peer, target: target)
    }

    // MARK: Values (what each key must be comes from `context.schema`)

    /// Refuses a key the table's schema does not have; the table's keys.
    @discardableResult
    func checkKeys(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> Set<String> {
        let allowed = context.schema.keyNames
        let keys = table.keys
        if let unknown = firstUnknownKey(in: keys, allowed: allowed, context: context) {
            throw error(.unknownKey(unknown, allowed: allowed), key: unknown, context)
        }
        return Set(keys)
    }

    /// `table[key]`, or nil at once for a key `checkKeys` found the table without.
    func lookup(_ table: TOMLTable, _ key: String, _ context: Context) -> TOMLValueConvertible? {
        if let known = context.knownKeys, known.table == ObjectIdentifier(table), !known.keys.contains(key) { return nil }
        return table[key]
    }

    /// The unknown key that comes first in the text (TOMLKit lists keys sorted).
    private func firstUnknownKey(in keys: [String], allowed: [String], context: Context?) -> String? {
        let unknown = keys.filter { !allowed.contains($0) }
        func position(_ key: String) -> Int {
            let found = context.map { line(of: key, $0) } ?? source.line(ofTopLevel: key)
            return found ?? Int.max
        }
        return unknown.min { (position($0), $0) < (position($1), $1) }
    }

    /// "`key` must be <its expected>, got `got`", on the key's line.
    func invalid(_ key: String, got: String, _ context: Context) -> ConfigError {
        error(.invalidValue(key: key, expected: context.schema[key].expected, got: got), key: key, context)
    }

    private func wrongType(_ key: String, _ value: TOMLValueConvertible, _ context: Context) -> ConfigError {
        error(.wrongType(key: key, expected: context.schema[key].expected, got: describeType(value)), key: key, context)
    }

    private func requiredString(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> String {
        guard let value = try optionalString(table, key, context) else { throw error(.missingKey(key), key: nil, context) }
        return value
    }

    func optionalString(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> String? {
        guard let value = lookup(table, key, context) else { return nil }
        guard let string = value.string else { throw wrongType(key, value, context) }
        guard !string.isEmpty else { throw invalid(key, got: "\"\"", context) }
        return string
    }

    func stringArray(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> [String]? {
        guard let value = lookup(table, key, context) else { return nil }
        guard let array = value.array else { throw wrongType(key, value, context) }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else {
                throw error(.wrongType(key: key, expected: context.schema[key].expected, got: "an array holding \(describeType(element))"),
                            key: key, context)
            }
            strings.append(string)
        }
        return strings
    }

    func integer(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> Int? {
        guard let value = lookup(table, key, context) else { return nil }
        guard let number = value.int else { throw wrongType(key, value, context) }
        if case .integer(let range) = context.schema[key].kind, !range.contains(number) { throw invalid(key, got: "\(number)", context) }
        return number
    }

    private func boolean(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> Bool? {
        guard let value = lookup(table, key, context) else { return nil }
        guard let flag = value.bool else { throw wrongType(key, value, context) }
        return flag
    }

    /// A duration string, or an integer number of seconds; within the key's range if it has one.
    func duration(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> Duration? {
        guard let value = lookup(table, key, context) else { return nil }
        let parsed: Duration
        if let seconds = value.int {
            let (milliseconds, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1000)
            guard seconds > 0, !overflow else { throw invalid(key, got: "\(seconds)", context) }
            parsed = .milliseconds(milliseconds)
        } else {
            guard let text = value.string else { throw wrongType(key, value, context) }
            guard let duration = Duration.parseConfig(text) else { throw invalid(key, got: text.configQuoted, context) }
            parsed = duration
        }
        if case .duration(let range?) = context.schema[key].kind, !range.contains(parsed) {
            throw invalid(key, got: parsed.configText, context)
        }
        return parsed
    }

    /// A positive integer number of bytes, or a string like "4MiB"; within the key's range if it has one.
    func size(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> UInt64? {
        guard let value = lookup(table, key, context) else { return nil }
        let bytes = value.int.flatMap { $0 > 0 ? UInt64($0) : nil } ?? value.string.flatMap(parseByteSize)
        guard let bytes else { throw invalid(key, got: describeType(value), context) }
        if case .size(let range?) = context.schema[key].kind,
           bytes > UInt64(range.upperBound) || !range.contains(Int(bytes)) {
            throw invalid(key, got: describeType(value), context)
        }
        return bytes
    }

    func parsed<T>(_ result: Result<T, ValueProblem>, key: String, value: String, _ context: Context) throws(ConfigError) -> T {
        switch result {
        case .success(let parsed): return parsed
        case .failure(.invalid(let expected)):
            throw error(.invalidValue(key: key, expected: expected, got: value.configQuoted), key: key, context)
        case .failure(.notSupportedYet(let feature)):
            throw error(.notSupportedYet(key: key, value: value.configQuoted, feature: feature), key: key, context)
        }
    }

    /// `[name]`, if the file has it.
    private func singleTable(_ root: TOMLTable, _ schema: ConfigTableSchema) throws(ConfigError) -> TOMLTable? {
        guard let value = root[schema.name] else { return nil }
        guard let table = value.table else {
            throw ConfigError(file: file, line: source.line(ofTopLevel: schema.name),
                              reason: .wrongType(key: schema.name, expected: "a table, written \(schema.header)", got: describeType(value)))
        }
        return table
    }

    private func arrayOfTables(_ root: TOMLTable, _ name: String) throws(ConfigError) -> [TOMLTable] {
        guard let value = root[name] else { return [] }
        let expected = "an array of tables, written [[\(name)]]"
        guard let array = value.array else {
            throw ConfigError(file: file, line: source.line(ofTopLevel: name),
                              reason: .wrongType(key: name, expected: expected, got: describeType(value)))
        }
        var tables: [TOMLTable] = []
        for element in array {
            guard let table = element.table else {
                throw ConfigError(file: file, line: source.line(ofTopLevel: name),
                                  reason: .wrongType(key: name, expected: expected, got: "an array holding \(describeType(element))"))
            }
            tables.append(table)
        }
        return tables
    }

    // MARK: Errors

    /// `[[peer]] "name"` when the element has a usable name, else `[[peer]] #n` (1-based).
    private func arrayContext(_ schema: ConfigTableSchema, index: Int, count: Int, name: String?) -> Context {
        let headers = source.arrayCount(schema.name)
        let label = name.flatMap { KeyStore.isValidName($0) ? $0.configQuoted : nil } ?? "#\(index + 1)"
        return Context(schema: schema, index: index, section: "\(schema.header) \(label)", headersMatch: headers == count)
    }

    func line(of key: String?, _ context: Context) -> Int? {
        guard context.headersMatch else { return nil }
        return source.line(ofKey: context.lineKey ?? key, inTable: context.table, index: context.index)
    }

    func error(_ reason: ConfigError.Reason, key: String?, _ context: Context) -> ConfigError {
        ConfigError(file: file, line: line(of: key, context), section: context.section, reason: reason)
    }
}

/// `string "4"`, `integer 0`, `a table` …: how a wrong-typed value is shown.
func describeType(_ value: TOMLValueConvertible) -> String {
    switch value.type {
    case .string: "string \((value.string ?? "").configQuoted)"
    case .int: "integer \(value.int.map(String.init) ?? "")"
    case .double: "floating-point number \(value.double.map { "\($0)" } ?? "")"
    case .bool: "boolean \(value.bool.map { "\($0)" } ?? "")"
    case .array: "an array"
    case .table: "a table"
    case .date, .time, .dateTime: "a \(value.type)"
    }
}
