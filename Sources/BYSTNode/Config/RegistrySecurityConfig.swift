/// `[node] registry_tls_*`: TLS to every member of an `etcds://` registry (paths as written;
/// `EtcdSecurity` loads them).
public struct EtcdTLSConfig: Sendable, Equatable {
    /// PEM CA certificates the members' certificates must chain to; nil: the system's roots.
    public var caFile: String?
    /// Our client certificate chain and its private key (PEM), both or neither: for an etcd
    /// run with `--client-cert-auth`.
    public var certificate: String?
    public var privateKey: String?
    /// The name every member's certificate must carry; nil: the member's host as written in
    /// `registry` (an IP address is then matched against the certificate's IP SANs).
    public var serverName: String?

    public init(caFile: String? = nil, certificate: String? = nil, privateKey: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.certificate = certificate
        self.privateKey = privateKey
        self.serverName = serverName
    }
}

/// `[node] registry_user`, `registry_password_file`: who we are to etcd (its user/password
/// authentication). The password stays in its own file, out of the main config.
public struct EtcdAuthConfig: Sendable, Equatable {
    public var user: String
    public var passwordFile: String

    public init(user: String, passwordFile: String) {
        self.user = user
        self.passwordFile = passwordFile
    }
}
