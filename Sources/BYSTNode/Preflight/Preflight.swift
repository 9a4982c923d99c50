import BYSTProto
import Glibc

/// Everything `byst up` would refuse, found without creating or binding anything lasting
/// (`byst check`; `byst up` runs it before it creates the TUN):
///
///   key store and its keys ─ TLS and etcd files ─ control socket directory ─ listen
///   addresses (bound and closed) ─ [tun] name, /dev/net/tun, CAP_NET_ADMIN ─ kernel routes
///   that allowed_ips would collide with
enum Preflight {
    /// The problems, in config order; `text` is the config's text, for line numbers.
    /// `keys`: the key store as the caller loaded it (loaded once for the check and the start).
    static func problems(_ config: NodeConfig, file: String, text: String?,
                         keys: Result<KeyStore, KeyStore.Failure>) -> [PreflightProblem] {
        let lines = ConfigLines(file: file, text: text)
        var problems = keyProblems(config, keys: keys, lines)
        problems += tlsProblems(config, lines)
        if let failure = ControlSocketCheck.failure(config: config) {
            problems.append(PreflightProblem(location: lines.location("control_socket", table: "node"), message: failure.description))
        }
        problems += bindProblems(config, lines)
        problems += tunProblems(config, lines)
        return problems
    }

    // MARK: Keys

    static func keyProblems(_ config: NodeConfig, keys loaded: Result<KeyStore, KeyStore.Failure>, _ lines: ConfigLines) -> [PreflightProblem] {
        let keys: KeyStore
        switch loaded {
        case .success(let store): keys = store
        case .failure(let error): return [PreflightProblem(location: lines.location("key_store", table: "node"), message: error.description)]
        }
        guard !config.peers.isEmpty else { return [] }
        guard keys.fileExists else {
            return [PreflightProblem(location: lines.location("key_store", table: "node"),
                                     message: KeyStore.missingStoreAdvice(path: keys.path, keys: config.peers.map(\.key)))]
        }
        var problems: [PreflightProblem] = []
        var owners: [KeyID: String] = [:]
        for (index, peer) in config.peers.enumerated() {
            // Found only for a problem: mapping a 10,000-peer file's lines is most of the check.
            var location: String { lines.location("key", table: "peer", index: index) }
            guard let (current, next) = keys.keys(named: peer.key) else {
                problems.append(PreflightProblem(location: location, message: Node.StartError.missingKey(
                    peer: peer.name, key: peer.key, store: keys.path, storeExists: true).description))
                continue
            }
            for key in [current] + (next.map { [$0] } ?? []) {
                if let other = owners[key.id], other != peer.name {
                    problems.append(PreflightProblem(location: location, message: Node.StartError.sharedKey(other, peer.name).description))
                }
                owners[key.id] = peer.name
            }
        }
        return problems
    }

    // MARK: TLS and etcd files

    static func tlsProblems(_ config: NodeConfig, _ lines: ConfigLines) -> [PreflightProblem] {
        var problems: [PreflightProblem] = []
        do throws(TLSSetup.Failure) { _ = try TLSSetup.serverContext(config.http) } catch {
            problems.append(PreflightProblem(location: lines.location("tls_certificate", table: "node"), message: error.description))
        }
        for (index, peer) in config.peers.enumerated()
        where peer.endpoint?.httpEndpoint?.tls == true || peer.endpoint?.portName != nil {
            do throws(TLSSetup.Failure) { _ = try TLSSetup.clientContext(peer.http, peer: peer.name) } catch {
                problems.append(PreflightProblem(location: lines.location("tls_ca_file", table: "peer", index: index), message: error.description))
            }
        }
        for (index, peer) in config.peers.enumerated() {
            guard let file = peer.http.proxyCredentialsFile else { continue }
            do throws(ProxyCredentialsFile.Failure) { _ = try ProxyCredentialsFile.read(file) } catch {
                problems.append(PreflightProblem(location: lines.location(ProxyCredentialsFile.key, table: "peer", index: index),
                                                 message: error.description))
            }
        }
        if let registry = config.registry {
            do throws(EtcdSecurity.Failure) { _ = try EtcdSecurity(registry) } catch {
                problems.append(PreflightProblem(location: lines.location(error.key, table: "node"), message: error.description))
            }
        }
        return problems
    }

    // MARK: Listeners

    /// Every address a listener binds at start, with what names it and where.
    static func listeners(_ config: NodeConfig, _ lines: ConfigLines) -> [(address: HostPort, what: String, location: String)] {
        var all: [(address: HostPort, what: String, location: String)] = []
        func node(_ key: String, _ addresses: [HostPort]) {
            for address in addresses {
                all.append((address, "[node] \(key)", lines.location(key, table: "node", value: address.description)))
            }
        }
        // An HA gateway binds its link listeners only while active (checked as warnings).
        if config.ha == nil {
            node("listen", config.listen)
            node("http_listen", config.http.listen)
            node("https_listen", config.http.tlsListen)
        }
        node("metrics_listen", config.metricsListen)
        for (index, forward) in config.forwards.enumerated() {
            all.append((forward.listen, "[[forward]] #\(index + 1) listen", lines.location("listen", table: "forward", index: index)))
        }
        return all
    }

    static func bindProblems(_ config: NodeConfig, _ lines: ConfigLines) -> [PreflightProblem] {
        var probe = BindProbe()
        defer { probe.closeAll() }
        var problems: [PreflightProblem] = []
        for listener in listeners(config, lines) {
            if let reason = probe.bind(listener.address, what: listener.what) {
                problems.append(PreflightProblem(location: listener.location, message: "\(listener.what) \(listener.address): cannot bind: \(reason)"))
            }
        }
        probe.closeAll()
        if config.ha != nil {
            for key in ["listen", "http_listen", "https_listen"] {
                let addresses = key == "listen" ? config.listen : key == "http_listen" ? config.http.listen : config.http.tlsListen
                for address in addresses {
                    if let reason = probe.bind(address, what: "[node] \(key)") {
                        problems.append(PreflightProblem(location: lines.location(key, table: "node", value: address.description),
                                                         message: "[node] \(key) \(address): cannot bind (needed when this gateway becomes active): \(reason)",
                                                         severity: .warning))
                    }
                }
            }
        }
        return problems
    }
}
