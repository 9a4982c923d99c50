import BYSTProto
import TOMLKit

/// `[node] registry` and its companions (docs/OPERATIONS.md, "High availability" and "etcd
/// security"): TLS keys only with `etcds://`, credentials only with etcd, pairs complete, and
/// the files they name usable now (so a bad one is refused here, on its line).
extension ConfigReader {
    static let registryKeys = ConfigSchema.node.keyNames.filter { $0.hasPrefix("registry") }
    private static let registryTLSKeys = registryKeys.filter { $0.hasPrefix("registry_tls_") }

    func readRegistry(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> RegistryConfig? {
        guard let text = try optionalString(table, "registry", context) else {
            if let lease = try duration(table, "registry_lease", context) {
                throw error(.invalidValue(key: "registry_lease", expected: "set only with registry", got: lease.configText), key: "registry_lease", context)
            }
            if let key = Self.registryKeys.first(where: { table[$0] != nil }) {
                throw error(.invalidValue(key: key, expected: "set only with registry", got: "no registry"), key: key, context)
            }
            return nil
        }
        var registry = RegistryConfig(service: try parsed(RegistryConfig.parseService(text), key: "registry", value: text, context))
        if let lease = try duration(table, "registry_lease", context) { registry.lease = lease }
        let etcdTLS: Bool
        switch registry.service {
        case .peer: etcdTLS = false
        case .etcd(_, let tls): etcdTLS = tls
        }
        if !etcdTLS, let key = Self.registryTLSKeys.first(where: { table[$0] != nil }) {
            throw error(.invalidValue(key: key, expected: "set only with an etcds:// registry (etcd over TLS)", got: "registry \(text.configQuoted)"),
                        key: key, context)
        }
        if etcdTLS { registry.etcdTLS = try readEtcdTLS(table, context) }
        registry.etcdAuth = try readEtcdAuth(table, context)
        if registry.etcdAuth != nil, case .peer = registry.service {
            throw error(.invalidValue(key: "registry_user", expected: "set only with an etcd:// or etcds:// registry", got: "registry \(text.configQuoted)"),
                        key: "registry_user", context)
        }
        do throws(EtcdSecurity.Failure) { _ = try EtcdSecurity(registry) } catch {
            throw self.error(.unusableFile(key: error.key, path: error.path, detail: error.detail), key: error.key, context)
        }
        return registry
    }

    private func readEtcdTLS(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> EtcdTLSConfig {
        var tls = EtcdTLSConfig()
        tls.caFile = try optionalString(table, "registry_tls_ca_file", context)
        tls.certificate = try optionalString(table, "registry_tls_certificate", context)
        tls.privateKey = try optionalString(table, "registry_tls_private_key", context)
        try requirePair(table, "registry_tls_certificate", "registry_tls_private_key", context)
        if let name = try optionalString(table, "registry_tls_server_name", context) {
            guard name.utf8.count <= 253, name.utf8.allSatisfy({ $0.isDNSNameByte }), name.contains(where: \.isLetter) else {
                throw invalid("registry_tls_server_name", got: name.configQuoted, context)
            }
            tls.serverName = name
        }
        return tls
    }

    private func readEtcdAuth(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> EtcdAuthConfig? {
        let user = try optionalString(table, "registry_user", context)
        let file = try optionalString(table, "registry_password_file", context)
        try requirePair(table, "registry_user", "registry_password_file", context)
        guard let user, let file else { return nil }
        return EtcdAuthConfig(user: user, passwordFile: file)
    }

    /// Both keys or neither.
    private func requirePair(_ table: TOMLTable, _ first: String, _ second: String, _ context: Context) throws(ConfigError) {
        for (present, missing) in [(first, second), (second, first)] where table[present] != nil && table[missing] == nil {
            throw error(.needs(key: present, value: table[present]?.string?.configQuoted, what: missing), key: present, context)
        }
    }
}

private extension UInt8 {
    var isDNSNameByte: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
            || self == UInt8(ascii: "-") || self == UInt8(ascii: ".")
    }
}
