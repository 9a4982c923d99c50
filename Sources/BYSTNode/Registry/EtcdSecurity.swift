// The etcd registry's TLS context and credentials, loaded from the files the config names:
//
//   registry_tls_ca_file, _certificate, _private_key ─▶ one NIOSSLContext (TLS ≥ 1.2, chain
//                                                        and name verified) for every member
//   registry_user + registry_password_file (mode 0600) ─▶ the password we authenticate with
//
// The config loader loads them once to refuse a bad file as a config error on its line;
// the node loads them again at start and keeps them for its life.
import BYSTProto
import NIOSSL

struct EtcdSecurity: Sendable {
    struct TLS: Sendable {
        let context: NIOSSLContext
        /// `registry_tls_server_name`; nil: each member's host.
        let serverName: String?
    }

    struct Credentials: Sendable {
        let user: String
        let password: String
    }

    var tls: TLS?
    var credentials: Credentials?

    /// The file named by config `key` is not usable.
    struct Failure: Error, CustomStringConvertible {
        let key: String
        let path: String
        let detail: String
        var description: String { "\(key) \(path.configQuoted): \(detail)" }
    }

    static let maxPasswordBytes = 1024

    init(tls: TLS? = nil, credentials: Credentials? = nil) {
        self.tls = tls
        self.credentials = credentials
    }

    init(_ registry: RegistryConfig) throws(Failure) {
        if let tls = registry.etcdTLS { self.tls = TLS(context: try Self.context(tls), serverName: tls.serverName) }
        if let auth = registry.etcdAuth {
            credentials = Credentials(user: auth.user, password: try Self.password(auth.passwordFile))
        }
    }

    /// The client context: the CA file's roots (else the system's), our certificate if any.
    static func context(_ tls: EtcdTLSConfig) throws(Failure) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        // What a failure to build the context is blamed on: the last file added (a key that
        // does not match its certificate fails only there).
        var blamed = (key: "registry", path: "etcds://")
        if let file = tls.caFile {
            configuration.trustRoots = .certificates(try certificates("registry_tls_ca_file", file))
            blamed = ("registry_tls_ca_file", file)
        }
        if let file = tls.certificate, let keyFile = tls.privateKey {
            configuration.certificateChain = try certificates("registry_tls_certificate", file).map { .certificate($0) }
            let bytes = try read("registry_tls_private_key", keyFile)
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: bytes, format: .pem))
            } catch {
                throw Failure(key: "registry_tls_private_key", path: keyFile, detail: "not a PEM private key (\(error))")
            }
            blamed = ("registry_tls_private_key", keyFile)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(key: blamed.key, path: blamed.path, detail: "TLS setup failed: \(error)")
        }
    }

    private static func certificates(_ key: String, _ path: String) throws(Failure) -> [NIOSSLCertificate] {
        let bytes = try read(key, path)
        let certificates: [NIOSSLCertificate]
        do { certificates = try NIOSSLCertificate.fromPEMBytes(bytes) } catch {
            throw Failure(key: key, path: path, detail: "not PEM certificates (\(error))")
        }
        guard !certificates.isEmpty else { throw Failure(key: key, path: path, detail: "holds no PEM certificate") }
        return certificates
    }

    /// The password: the file's one line, from a secret file (`SecretLineFile`: ours or
    /// root's, no symbolic link, not readable by group or others — like the key store).
    static func password(_ path: String) throws(Failure) -> String {
        do throws(SecretLineFile.Failure) { return try SecretLineFile.read(path, maxBytes: maxPasswordBytes) } catch {
            throw Failure(key: "registry_password_file", path: path, detail: "\(error)")
        }
    }

    private static func read(_ key: String, _ path: String, limit: Int = 1 << 20) throws(Failure) -> [UInt8] {
        let bytes: [UInt8]?
        do throws(AtomicFile.Failure) { bytes = try AtomicFile.read(path, limit: limit) } catch {
            throw Failure(key: key, path: path, detail: "cannot \(error.operation): \(error.reason)")
        }
        guard let bytes else { throw Failure(key: key, path: path, detail: "no such file") }
        return bytes
    }
}
