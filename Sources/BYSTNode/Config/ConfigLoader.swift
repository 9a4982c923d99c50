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
        var table: String
        /// Position in the `[[table]]` array; nil for `[node]`.
        var index: Int?
        var section: String
        /// Whether the `index`-th `[[table]]` header in the text is this element (false
        /// when the array is written inline, so the header count differs).
        var headersMatch: Bool
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
        let topLevel = ["node", "tun", "ha", "limits", "peer", "forward"]
        if let unknown = firstUnknownKey(in: root, allowed: topLevel, context: nil) {
            throw ConfigError(file: file, line: source.line(ofTopLevel: unknown), section: nil,
                              reason: .unknownKey(unknown, allowed: ["[node]", "[tun]", "[ha]", "[limits]", "[[peer]]", "[[forward]]"]))
        }
        guard let nodeValue = root["node"] else { throw ConfigError(file: file, reason: .missingTable("[node]")) }
        guard let nodeTable = nodeValue.table else {
            throw ConfigError(file: file, line: source.line(ofTopLevel: "node"),
                              reason: .wrongType(key: "node", expected: "a table, written [node]", got: describeType(nodeValue)))
        }
        var config = try readNode(nodeTable)
        if let tunValue = root["tun"] {
            guard let tunTable = tunValue.table else {
                throw ConfigError(file: file, line: source.line(ofTopLevel: "tun"),
                                  reason: .wrongType(key: "tun", expected: "a table, written [tun]", got: describeType(tunValue)))
            }
            config.tun = try readTun(tunTable)
        }

        let peerTables = try arrayOfTables(root, "peer")
        var peerLines: [String: Int?] = [:]
        // Cryptokey routing needs one peer per prefix.
        var routes: [IPPrefix: (peer: String, line: Int?)] = [:]
        for (index, table) in peerTables.enumerated() {
            let context = arrayContext("peer", index: index, count: peerTables.count, name: table["name"]?.string)
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
            let context = arrayContext("forward", index: index, count: forwardTables.count, name: nil)
            let forward = try readForward(table, context)
            if let first = forwardLines[forward.listen] {
                throw error(.duplicate(what: "forward listen address", value: forward.listen.description.configQuoted,
                                       firstLine: first), key: "listen", context)
            }
            forwardLines[forward.listen] = line(of: "listen", context)
            guard config.peer(named: forward.peer) != nil else { throw error(.undefinedPeer(forward.peer), key: "peer", context) }
            config.forwards.append(forward)
        }
        if let limitsValue = root["limits"] {
            guard let limitsTable = limitsValue.table else {
                throw ConfigError(file: file, line: source.line(ofTopLevel: "limits"),
                                  reason: .wrongType(key: "limits", expected: "a table, written [limits]", got: describeType(limitsValue)))
            }
            config.limits = try readLimits(limitsTable)
        }
        if let haValue = root["ha"] {
            guard let haTable = haValue.table else {
                throw ConfigError(file: file, line: source.line(ofTopLevel: "ha"),
                                  reason: .wrongType(key: "ha", expected: "a table, written [ha]", got: describeType(haValue)))
            }
            config.ha = try readHA(haTable)
        }
        try checkRegistryUse(config)
        try checkPortGateways(config)
        return config
    }

    /// `[ha]` and `port:` endpoints need a registry; `peer:NAME` must name a peer we dial.
    private func checkRegistryUse(_ config: NodeConfig) throws(ConfigError) {
        let nodeContext = Context(table: "node", index: nil, section: "[node]", headersMatch: true)
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
            let context = Context(table: "ha", index: nil, section: "[ha]", headersMatch: true)
            throw error(.needs(key: "port", value: config.ha?.port.configQuoted, what: Self.registryNeeded), key: "port", context)
        }
        let peerTables = source.blocks.filter { $0.name == "peer" && $0.isArray }.count
        for (index, peer) in config.peers.enumerated() where peer.endpoint?.portName != nil {
            let context = Context(table: "peer", index: index, section: "[[peer]] \(peer.name.configQuoted)",
                                  headersMatch: peerTables == config.peers.count)
            throw error(.needs(key: "endpoint", value: peer.endpoint?.description.configQuoted, what: Self.registryNeeded),
                        key: "endpoint", context)
        }
    }

    /// A `port:NAME` peer names the gateways that may serve it (deny by default): whoever
    /// else takes the port at the registry is ignored.
    private func checkPortGateways(_ config: NodeConfig) throws(ConfigError) {
        let peerTables = source.blocks.filter { $0.name == "peer" && $0.isArray }.count
        for (index, peer) in config.peers.enumerated() where peer.endpoint?.portName != nil && peer.gateways.isEmpty {
            let context = Context(table: "peer", index: index, section: "[[peer]] \(peer.name.configQuoted)",
                                  headersMatch: peerTables == config.peers.count)
            throw error(.needs(key: "endpoint", value: peer.endpoint?.description.configQuoted,
                               what: "gateways = [\"…\"]: the gateways that may serve it, by their names at the registry ([[peer]] names at `byst registry serve`, [node] names with etcd); any other owner of the port is ignored"),
                        key: "gateways", context)
        }
    }

    static let registryNeeded = "a registry: [node] registry = \"peer:NAME\" or \"etcd://host:port,…\""

    private func readHA(_ table: TOMLTable) throws(ConfigError) -> HAConfig {
        let context = Context(table: "ha", index: nil, section: "[ha]", headersMatch: true)
        try checkKeys(table, allowed: ["port", "advertise"], context)
        let portExpected = "a port name of 1…255 bytes without control characters"
        let port = try requiredString(table, "port", expected: portExpected, context)
        guard RegistryService.isValidName(port) else {
            throw error(.invalidValue(key: "port", expected: portExpected, got: port.configQuoted), key: "port", context)
        }
        let advertiseExpected = "a non-empty array of the endpoints branches dial while this gateway is active (\"byst://…\", \"http(s)://…\")"
        guard let texts = try stringArray(table, "advertise", expected: advertiseExpected, context) else {
            throw error(.missingKey("advertise"), key: nil, context)
        }
        var advertise: [Endpoint] = []
        for text in texts {
            let endpoint = try parsed(Endpoint.parse(text), key: "advertise", value: text, context)
            guard endpoint.portName == nil else {
                throw error(.invalidValue(key: "advertise", expected: advertiseExpected, got: text.configQuoted), key: "advertise", context)
            }
            advertise.append(endpoint)
        }
        guard !advertise.isEmpty else {
            throw error(.invalidValue(key: "advertise", expected: advertiseExpected, got: "an empty array"), key: "advertise", context)
        }
        return HAConfig(port: port, advertise: advertise)
    }

    // MARK: Tables

    private func readNode(_ table: TOMLTable) throws(ConfigError) -> NodeConfig {
        let context = Context(table: "node", index: nil, section: "[node]", headersMatch: true)
        let keys = ["name", "listen", "http_listen", "https_listen", "http_path", "tls_certificate", "tls_private_key",
                    "control_socket", "key_store", "session_linger", "keepalive_interval", "dead_link_timeout",
                    "max_record_payload", "compression_level", "metrics_listen"] + Self.registryKeys
        try checkKeys(table, allowed: keys, context)
        let nameExpected = "a string of 1…\(LinkHello.maxNodeNameBytes) bytes"
        let name = try requiredString(table, "name", expected: nameExpected, context)
        guard LinkHello.isValidNodeName(name) else {
            throw error(.invalidValue(key: "name", expected: nameExpected, got: name.configQuoted), key: "name", context)
        }
        var config = NodeConfig(name: name)

        var seen: Set<HostPort> = []
        func addresses(_ key: String) throws(ConfigError) -> [HostPort] {
            var list: [HostPort] = []
            for text in try stringArray(table, key, expected: "an array of \(HostPort.expected) strings", context) ?? [] {
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
        let pathExpected = "a path like \"/byst\" (letters, digits, / . _ ~ -)"
        if let path = try optionalString(table, "http_path", expected: pathExpected, context) {
            guard isSafePath(path) else {
                throw error(.invalidValue(key: "http_path", expected: pathExpected, got: path.configQuoted), key: "http_path", context)
            }
            config.http.path = path
        }
        config.http.tlsCertificate = try optionalString(table, "tls_certificate", expected: "the path of a PEM certificate chain", context)
        config.http.tlsPrivateKey = try optionalString(table, "tls_private_key", expected: "the path of a PEM private key", context)
        if !config.http.tlsListen.isEmpty {
            for key in ["tls_certificate", "tls_private_key"] where table[key] == nil {
                throw error(.invalidValue(key: key, expected: "set when https_listen is (the server's TLS identity)", got: "nothing"),
                            key: "https_listen", context)
            }
        }
        // sockaddr_un.sun_path holds 108 bytes, the last one the terminating NUL.
        let socketExpected = "a path of 1…107 bytes"
        if let path = try optionalString(table, "control_socket", expected: socketExpected, context) {
            guard path.utf8.count <= 107 else {
                throw error(.invalidValue(key: "control_socket", expected: socketExpected, got: path.configQuoted),
                            key: "control_socket", context)
            }
            config.controlSocket = path
        }
        if let path = try optionalString(table, "key_store", expected: "a non-empty path", context) { config.keyStore = path }
        if let linger = try duration(table, "session_linger", context) { config.sessionLinger = linger }
        if let interval = try duration(table, "keepalive_interval", context) { config.keepaliveInterval = interval }
        if let timeout = try duration(table, "dead_link_timeout", context) { config.deadLinkTimeout = timeout }
        guard config.deadLinkTimeout > config.keepaliveInterval else {
            let key = table["dead_link_timeout"] == nil ? "keepalive_interval" : "dead_link_timeout"
            throw error(.invalidValue(key: "dead_link_timeout",
                                      expected: "longer than keepalive_interval (\(config.keepaliveInterval.configText))",
                                      got: config.deadLinkTimeout.configText), key: key, context)
        }
        let range = NodeConfig.maxRecordPayloadRange
        if let size = try integer(table, "max_record_payload", in: range, expected: "an integer \(range.lowerBound)…\(range.upperBound)", context) {
            config.maxRecordPayload = size
        }
        config.registry = try readRegistry(table, context)
        let levels = Int(RecordCompressor.levelRange.lowerBound)...Int(RecordCompressor.levelRange.upperBound)
        if let level = try integer(table, "compression_level", in: levels,
                                   expected: "an integer \(levels.lowerBound)…\(levels.upperBound)", context) {
            config.compressionLevel = level
        }
        return config
    }

    private func readTun(_ table: TOMLTable) throws(ConfigError) -> TunConfig {
        let context = Context(table: "tun", index: nil, section: "[tun]", headersMatch: true)
        try checkKeys(table, allowed: ["name", "address", "mtu", "offload", "queues", "data_plane"], context)
        let nameExpected = "an interface name of 1-15 letters, digits, '.', '_' or '-' (not \".\" or \"..\")"
        let name = try optionalString(table, "name", expected: nameExpected, context) ?? TunConfig.defaultName
        guard TunConfig.isValidInterfaceName(name) else {
            throw error(.invalidValue(key: "name", expected: nameExpected, got: name.configQuoted), key: "name", context)
        }
        let arrayExpected = "a non-empty array of interface addresses like \"10.0.1.1/24\" or \"fd00:1::1/64\""
        guard let texts = try stringArray(table, "address", expected: arrayExpected, context) else {
            throw error(.missingKey("address"), key: nil, context)
        }
        guard !texts.isEmpty else {
            throw error(.invalidValue(key: "address", expected: arrayExpected, got: "an empty array"), key: "address", context)
        }
        var addresses: [IPPrefix] = []
        for text in texts {
            let address = try parsed(IPPrefix.parseInterfaceAddress(text), key: "address", value: text, context)
            guard !addresses.contains(where: { $0.address == address.address }) else {
                throw error(.duplicate(what: "address", value: text.configQuoted, firstLine: nil), key: "address", context)
            }
            addresses.append(address)
        }
        let range = TunConfig.mtuRange
        var tun = TunConfig(name: name, addresses: addresses)
        if let mtu = try integer(table, "mtu", in: range, expected: "an integer \(range.lowerBound)…\(range.upperBound)", context) {
            tun.mtu = mtu
        }
        let queues = TunConfig.queuesRange
        if let count = try integer(table, "queues", in: queues, expected: "an integer \(queues.lowerBound)…\(queues.upperBound)", context) {
            tun.queues = count
        }
        for (key, setting) in [("offload", \TunConfig.offload), ("data_plane", \TunConfig.dataPlane)] {
            guard let value = table[key] else { continue }
            guard let flag = value.bool else {
                throw error(.wrongType(key: key, expected: "true or false", got: describeType(value)), key: key, context)
            }
            tun[keyPath: setting] = flag
        }
        if let ipv6 = addresses.first(where: \.isIPv6), tun.mtu < TunConfig.minimumIPv6MTU {
            let expected = "an integer \(TunConfig.minimumIPv6MTU)…\(range.upperBound) with an IPv6 address (\(ipv6))"
            throw error(.invalidValue(key: "mtu", expected: expected, got: "\(tun.mtu)"), key: "mtu", context)
        }
        return tun
    }

    private func readPeer(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> PeerConfig {
        try checkKeys(table, allowed: ["name", "key", "endpoint", "links", "allow_targets", "allowed_ips", "http_mode", "http_proxy",
                                       "proxy_mode", "tls_ca_file", "tls_pin_sha256", "tls_server_name", "recycle_after",
                                       "recycle_bytes", "compression", "ports", "gateways"], context)
        let nameExpected = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        let name = try requiredString(table, "name", expected: nameExpected, context)
        guard KeyStore.isValidName(name) else {
            throw error(.invalidValue(key: "name", expected: nameExpected, got: name.configQuoted), key: "name", context)
        }
        let keyExpected = "the name of a key in the key store (\(nameExpected))"
        let key = try requiredString(table, "key", expected: keyExpected, context)
        guard KeyStore.isValidName(key) else {
            throw error(.invalidValue(key: "key", expected: keyExpected, got: key.configQuoted), key: "key", context)
        }
        var peer = PeerConfig(name: name, key: key)
        if let text = try optionalString(table, "endpoint", expected: Endpoint.expected, context) {
            peer.endpoint = try parsed(Endpoint.parse(text), key: "endpoint", value: text, context)
        }
        let range = PeerConfig.linksRange
        if let links = try integer(table, "links", in: range, expected: "an integer \(range.lowerBound)…\(range.upperBound)", context) {
            peer.links = links
        }
        for text in try stringArray(table, "allow_targets", expected: "an array of \(TargetRule.expected) strings", context) ?? [] {
            peer.allowTargets.append(try parsed(TargetRule.parse(text), key: "allow_targets", value: text, context))
        }
        let prefixesExpected = "an array of IP prefix strings like \"10.0.2.0/24\" or \"fd00:2::/64\""
        for text in try stringArray(table, "allowed_ips", expected: prefixesExpected, context) ?? [] {
            let prefix = try parsed(IPPrefix.parseAllowedIP(text), key: "allowed_ips", value: text, context)
            guard !peer.allowedIPs.contains(prefix) else {
                throw error(.duplicate(what: "allowed_ips prefix", value: prefix.description.configQuoted, firstLine: nil),
                            key: "allowed_ips", context)
            }
            peer.allowedIPs.append(prefix)
        }
        let compressionExpected = "one of \(CompressionScope.allCases.map(\.rawValue.configQuoted).joined(separator: ", "))"
        if let text = try optionalString(table, "compression", expected: compressionExpected, context) {
            guard let scope = CompressionScope(rawValue: text) else {
                throw error(.invalidValue(key: "compression", expected: compressionExpected, got: text.configQuoted),
                            key: "compression", context)
            }
            peer.compression = scope
        }
        try readHTTPClient(table, into: &peer, context)
        try readRegistryRights(table, into: &peer, context)
        return peer
    }

    /// `ports` (what the peer may own at our embedded registry) and `gateways` (who may serve
    /// our `port:NAME` endpoint): both deny by default, so a `port:NAME` peer must list its gateways.
    private func readRegistryRights(_ table: TOMLTable, into peer: inout PeerConfig, _ context: Context) throws(ConfigError) {
        let namesExpected = "an array of names of 1…255 bytes without control characters"
        for (key, path) in [("ports", \PeerConfig.ports), ("gateways", \PeerConfig.gateways)] {
            for name in try stringArray(table, key, expected: namesExpected, context) ?? [] {
                guard RegistryService.isValidName(name) else {
                    throw error(.invalidValue(key: key, expected: namesExpected, got: name.configQuoted), key: key, context)
                }
                guard !peer[keyPath: path].contains(name) else {
                    throw error(.duplicate(what: key == "ports" ? "port" : "gateway", value: name.configQuoted, firstLine: nil), key: key, context)
                }
                peer[keyPath: path].append(name)
            }
        }
        if peer.endpoint?.portName == nil, table["gateways"] != nil {
            throw error(.invalidValue(key: "gateways", expected: "set only with a port:NAME endpoint",
                                      got: peer.endpoint.map { "endpoint \($0.description.configQuoted)" } ?? "no endpoint"), key: "gateways", context)
        }
    }

    /// The HTTP transport keys of a `[[peer]]`: only with an http(s) endpoint, TLS keys only
    /// with https.
    private func readHTTPClient(_ table: TOMLTable, into peer: inout PeerConfig, _ context: Context) throws(ConfigError) {
        let endpoint = peer.endpoint?.httpEndpoint
        let httpKeys = ["http_mode", "http_proxy", "proxy_mode", "tls_ca_file", "tls_pin_sha256", "tls_server_name"]
        // A port:NAME peer may be published with any endpoint: its HTTP keys apply when it is http(s).
        let followsPort = peer.endpoint?.portName != nil
        if endpoint == nil, !followsPort, let key = httpKeys.first(where: { table[$0] != nil }) {
            throw error(.invalidValue(key: key, expected: "set only with an http:// or https:// endpoint",
                                      got: peer.endpoint.map { "endpoint \($0.description.configQuoted)" } ?? "no endpoint"), key: key, context)
        }
        if let endpoint {
            peer.recycle = .httpDefault
            if !endpoint.tls, let key = httpKeys.filter({ $0.hasPrefix("tls_") }).first(where: { table[$0] != nil }) {
                throw error(.invalidValue(key: key, expected: "set only with an https:// endpoint", got: "endpoint \(endpoint.description.configQuoted)"),
                            key: key, context)
            }
        }
        let modeExpected = "one of \(HTTPMode.allCases.map(\.rawValue.configQuoted).joined(separator: ", "))"
        if let text = try optionalString(table, "http_mode", expected: modeExpected, context) {
            guard let mode = HTTPMode(rawValue: text) else {
                throw error(.invalidValue(key: "http_mode", expected: modeExpected, got: text.configQuoted), key: "http_mode", context)
            }
            peer.http.mode = mode
        }
        let proxyModeExpected = "one of \(ProxyConfig.Mode.allCases.map(\.rawValue.configQuoted).joined(separator: ", "))"
        var proxyMode: ProxyConfig.Mode = endpoint?.tls == true ? .connect : .forward
        if let text = try optionalString(table, "proxy_mode", expected: proxyModeExpected, context) {
            guard let mode = ProxyConfig.Mode(rawValue: text) else {
                throw error(.invalidValue(key: "proxy_mode", expected: proxyModeExpected, got: text.configQuoted), key: "proxy_mode", context)
            }
            guard table["http_proxy"] != nil else {
                throw error(.invalidValue(key: "proxy_mode", expected: "set only with http_proxy", got: text.configQuoted), key: "proxy_mode", context)
            }
            if mode == .forward, endpoint?.tls == true {
                throw error(.invalidValue(key: "proxy_mode", expected: "\"connect\" with an https:// endpoint (a forward proxy cannot speak TLS for us)",
                                          got: text.configQuoted), key: "proxy_mode", context)
            }
            proxyMode = mode
        }
        if let text = try optionalString(table, "http_proxy", expected: ProxyConfig.expected + " or \"env\"", context) {
            if text == "env" {
                let explicitMode = table["proxy_mode"] == nil ? nil : proxyMode
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
        peer.http.tlsCAFile = try optionalString(table, "tls_ca_file", expected: "the path of a PEM file of CA certificates", context)
        peer.http.tlsServerName = try optionalString(table, "tls_server_name", expected: "a DNS name", context)
        let pinsExpected = "an array of \"sha256//<base64>\" strings"
        for text in try stringArray(table, "tls_pin_sha256", expected: pinsExpected, context) ?? [] {
            peer.http.tlsPins.append(try parsed(parseTLSPin(text), key: "tls_pin_sha256", value: text, context))
        }
        if let after = try duration(table, "recycle_after", context) { peer.recycle.after = after }
        if let value = table["recycle_bytes"] {
            let expected = "a positive integer or a size like \"512MiB\" or \"1GiB\""
            guard let bytes = value.int.flatMap({ $0 > 0 ? UInt64($0) : nil }) ?? value.string.flatMap(parseByteSize) else {
                throw error(.invalidValue(key: "recycle_bytes", expected: expected, got: describeType(value)), key: "recycle_bytes", context)
            }
            peer.recycle.bytes = bytes
        }
    }

    private func readForward(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> ForwardConfig {
        try checkKeys(table, allowed: ["listen", "peer", "target"], context)
        let listenText = try requiredString(table, "listen", expected: HostPort.expected, context)
        let listen = try parsed(HostPort.parse(listenText), key: "listen", value: listenText, context)
        let peer = try requiredString(table, "peer", expected: "the name of a [[peer]]", context)
        let targetText = try requiredString(table, "target", expected: HostPort.expected, context)
        let target = try parsed(HostPort.parse(targetText), key: "target", value: targetText, context)
        return ForwardConfig(listen: listen, peer: peer, target: target)
    }

    // MARK: Values

    func checkKeys(_ table: TOMLTable, allowed: [String], _ context: Context) throws(ConfigError) {
        if let unknown = firstUnknownKey(in: table, allowed: allowed, context: context) {
            throw error(.unknownKey(unknown, allowed: allowed), key: unknown, context)
        }
    }

    /// The unknown key that comes first in the text (TOMLKit lists keys sorted).
    private func firstUnknownKey(in table: TOMLTable, allowed: [String], context: Context?) -> String? {
        let unknown = table.keys.filter { !allowed.contains($0) }
        func position(_ key: String) -> Int {
            let found = context.map { line(of: key, $0) } ?? source.line(ofTopLevel: key)
            return found ?? Int.max
        }
        return unknown.min { (position($0), $0) < (position($1), $1) }
    }

    private func requiredString(_ table: TOMLTable, _ key: String, expected: String, _ context: Context) throws(ConfigError) -> String {
        guard let value = try optionalString(table, key, expected: expected, context) else {
            throw error(.missingKey(key), key: nil, context)
        }
        return value
    }

    func optionalString(_ table: TOMLTable, _ key: String, expected: String, _ context: Context) throws(ConfigError) -> String? {
        guard let value = table[key] else { return nil }
        guard let string = value.string else {
            throw error(.wrongType(key: key, expected: expected, got: describeType(value)), key: key, context)
        }
        guard !string.isEmpty else { throw error(.invalidValue(key: key, expected: expected, got: "\"\""), key: key, context) }
        return string
    }

    private func stringArray(_ table: TOMLTable, _ key: String, expected: String, _ context: Context) throws(ConfigError) -> [String]? {
        guard let value = table[key] else { return nil }
        guard let array = value.array else {
            throw error(.wrongType(key: key, expected: expected, got: describeType(value)), key: key, context)
        }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else {
                throw error(.wrongType(key: key, expected: expected, got: "an array holding \(describeType(element))"), key: key, context)
            }
            strings.append(string)
        }
        return strings
    }

    func integer(_ table: TOMLTable, _ key: String, in range: ClosedRange<Int>, expected: String,
                         _ context: Context) throws(ConfigError) -> Int? {
        guard let value = table[key] else { return nil }
        guard let number = value.int else {
            throw error(.wrongType(key: key, expected: expected, got: describeType(value)), key: key, context)
        }
        guard range.contains(number) else { throw error(.invalidValue(key: key, expected: expected, got: "\(number)"), key: key, context) }
        return number
    }

    /// A duration string, or an integer number of seconds.
    func duration(_ table: TOMLTable, _ key: String, _ context: Context) throws(ConfigError) -> Duration? {
        guard let value = table[key] else { return nil }
        let expected = Duration.configExpected
        if let seconds = value.int {
            let (milliseconds, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1000)
            guard seconds > 0, !overflow else {
                throw error(.invalidValue(key: key, expected: expected, got: "\(seconds)"), key: key, context)
            }
            return .milliseconds(milliseconds)
        }
        guard let text = value.string else {
            throw error(.wrongType(key: key, expected: expected, got: describeType(value)), key: key, context)
        }
        guard let duration = Duration.parseConfig(text) else {
            throw error(.invalidValue(key: key, expected: expected, got: text.configQuoted), key: key, context)
        }
        return duration
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
    private func arrayContext(_ table: String, index: Int, count: Int, name: String?) -> Context {
        let headers = source.blocks.filter { $0.name == table && $0.isArray }.count
        let label = name.flatMap { KeyStore.isValidName($0) ? $0.configQuoted : nil } ?? "#\(index + 1)"
        return Context(table: table, index: index, section: "[[\(table)]] \(label)", headersMatch: headers == count)
    }

    private func line(of key: String?, _ context: Context) -> Int? {
        guard context.headersMatch else { return nil }
        return source.line(ofKey: key, inTable: context.table, index: context.index)
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
