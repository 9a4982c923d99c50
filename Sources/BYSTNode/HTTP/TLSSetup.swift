import BYSTProto
import NIOCore
import NIOSSL

/// TLS under the HTTP transport (`https://` endpoints, `https_listen`), built once at start
/// so a bad certificate, key or CA file stops the node with a clear error.
enum TLSSetup {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The server side of `https_listen`.
    static func serverContext(_ config: HTTPServerConfig) throws(Failure) -> NIOSSLContext? {
        guard !config.tlsListen.isEmpty, let certificatePath = config.tlsCertificate, let keyPath = config.tlsPrivateKey else {
            return nil
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw Failure(description: "no certificate in \(certificatePath)") }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: configuration)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "TLS certificate \(certificatePath) / key \(keyPath): \(error)")
        }
    }

    /// A peer's client context: its CA file or the system roots, or pins instead of a CA.
    static func clientContext(_ options: HTTPClientOptions, peer: String) throws(Failure) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let file = options.tlsCAFile { configuration.trustRoots = .file(file) }
        // A pinned key identifies the server by itself; names in its certificate do not matter.
        if !options.tlsPins.isEmpty { configuration.certificateVerification = .noHostnameVerification }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(description: "peer '\(peer)': TLS setup (tls_ca_file \(options.tlsCAFile ?? "system roots")): \(error)")
        }
    }

    /// The client handler for one connection. With pins, the server's key must match one
    /// (and that is enough: self-signed servers are common for VPN hubs).
    static func clientHandler(context: NIOSSLContext, options: HTTPClientOptions, host: String) throws -> NIOSSLClientHandler {
        let sni = sniName(options.tlsServerName ?? host)
        guard !options.tlsPins.isEmpty else { return try NIOSSLClientHandler(context: context, serverHostname: sni) }
        let pins = options.tlsPins
        return try NIOSSLClientHandler(context: context, serverHostname: sni) { certificates, promise in
            promise.succeed(matchesPin(certificates.first, pins: pins) ? .certificateVerified : .failed)
        }
    }

    /// The name to send as SNI and verify: nil for an IP address (SNI carries names; NIOSSL
    /// then checks the certificate's IP SANs against the address connected to).
    static func sniName(_ serverName: String) -> String? {
        serverName.contains(":") || serverName.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : serverName
    }

    static func matchesPin(_ certificate: NIOSSLCertificate?, pins: [[UInt8]]) -> Bool {
        guard let certificate, let spki = try? certificate.extractPublicKey().toSPKIBytes(),
              let digest = try? HashFunction.sha256.hash(spki)
        else { return false }
        return pins.contains(digest)
    }
}
