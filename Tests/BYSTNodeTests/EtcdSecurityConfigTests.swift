import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// `[node] registry_tls_*`, `registry_user` and `registry_password_file` (etcd over TLS with
/// authentication): the keys' rules, and the files they name checked at load.
@Suite struct EtcdSecurityConfigTests {
    static let file = "/etc/byst/branch.toml"

    /// A config whose `[node]` ends with `lines` (from line 4 on).
    func config(_ registry: String, _ lines: String...) -> String {
        "[node]\nname = \"branch\"\nregistry = \"\(registry)\"\n" + lines.map { $0 + "\n" }.joined()
    }

    func error(_ text: String) -> String? { NodeConfig.parseError(text, file: Self.file) }

    /// A CA (self-signed), a client certificate and key, another key, and a password file (0600).
    struct Files {
        let ca, certificate, key, otherKey, password: String
    }

    func makeFiles(in dir: String) throws -> Files {
        for name in ["ca", "client", "other"] {
            try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).pem", "-days", "2", "-subj", "/CN=byst-\(name)"])
        }
        let password = "\(dir)/etcd.password"
        try write("s3cret pass\n", to: password, mode: 0o600)
        return Files(ca: "\(dir)/ca.pem", certificate: "\(dir)/client.pem", key: "\(dir)/client.key", otherKey: "\(dir)/other.key",
                     password: password)
    }

    @Test func readsTLSAndCredentialsForEtcds() throws {
        try withTemporaryDirectory { dir in
            let files = try makeFiles(in: dir)
            let config = try NodeConfig.parse(config(
                "etcds://10.0.0.1:2379,etcd.example:2379",
                "registry_tls_ca_file = \"\(files.ca)\"", "registry_tls_certificate = \"\(files.certificate)\"",
                "registry_tls_private_key = \"\(files.key)\"", "registry_tls_server_name = \"etcd.internal\"",
                "registry_user = \"branch\"", "registry_password_file = \"\(files.password)\""), file: Self.file)
            let registry = try #require(config.registry)
            #expect(registry.service == .etcd([HostPort(host: "10.0.0.1", port: 2379), HostPort(host: "etcd.example", port: 2379)], tls: true))
            #expect(registry.service.description == "etcds://10.0.0.1:2379,etcd.example:2379")
            #expect(registry.etcdTLS == EtcdTLSConfig(caFile: files.ca, certificate: files.certificate, privateKey: files.key,
                                                      serverName: "etcd.internal"))
            #expect(registry.etcdAuth == EtcdAuthConfig(user: "branch", passwordFile: files.password))
            let security = try EtcdSecurity(registry)
            #expect(security.credentials?.password == "s3cret pass")
            #expect(security.tls?.serverName == "etcd.internal")
        }
    }

    @Test func etcdsAloneUsesTheSystemRootsAndAuthWorksOverPlainEtcd() throws {
        try withTemporaryDirectory { dir in
            let files = try makeFiles(in: dir)
            let tls = try NodeConfig.parse(config("etcds://10.0.0.1:2379"), file: Self.file)
            #expect(tls.registry?.etcdTLS == EtcdTLSConfig())
            #expect(tls.registry?.etcdAuth == nil)
            let plain = try NodeConfig.parse(config("etcd://10.0.0.1:2379", "registry_user = \"hub-a\"",
                                                    "registry_password_file = \"\(files.password)\""), file: Self.file)
            #expect(plain.registry?.service == .etcd([HostPort(host: "10.0.0.1", port: 2379)], tls: false))
            #expect(plain.registry?.etcdTLS == nil)
            #expect(plain.registry?.etcdAuth?.user == "hub-a")
        }
    }

    @Test func keysOutOfPlaceOrIncompleteGiveOnePreciseLine() throws {
        try withTemporaryDirectory { dir in
            let files = try makeFiles(in: dir)
            let f = Self.file
            let registryPeer = "[[peer]]\nname = \"registry\"\nkey = \"r\"\nendpoint = \"byst://10.0.0.9:7100\""
            let cases: [(String, String)] = [
                (config("etcd://10.0.0.1:2379", "registry_tls_ca_file = \"\(files.ca)\""),
                 #"\#(f):4: [node]: registry_tls_ca_file must be set only with an etcds:// registry (etcd over TLS), got registry "etcd://10.0.0.1:2379""#),
                (config("etcd://10.0.0.1:2379", "registry_tls_server_name = \"etcd\""),
                 #"\#(f):4: [node]: registry_tls_server_name must be set only with an etcds:// registry"#),
                (config("peer:registry", "registry_tls_certificate = \"\(files.certificate)\"", registryPeer),
                 #"\#(f):4: [node]: registry_tls_certificate must be set only with an etcds:// registry"#),
                ("[node]\nname = \"branch\"\nregistry_user = \"branch\"\n",
                 #"\#(f):3: [node]: registry_user must be set only with registry, got no registry"#),
                (config("etcds://10.0.0.1:2379", "registry_tls_certificate = \"\(files.certificate)\""),
                 #"\#(f):4: [node]: registry_tls_certificate "\#(files.certificate)" needs registry_tls_private_key"#),
                (config("etcds://10.0.0.1:2379", "registry_tls_private_key = \"\(files.key)\""),
                 #"\#(f):4: [node]: registry_tls_private_key "\#(files.key)" needs registry_tls_certificate"#),
                (config("etcds://10.0.0.1:2379", "registry_user = \"branch\""),
                 #"\#(f):4: [node]: registry_user "branch" needs registry_password_file"#),
                (config("etcd://10.0.0.1:2379", "registry_password_file = \"\(files.password)\""),
                 #"\#(f):4: [node]: registry_password_file "\#(files.password)" needs registry_user"#),
                (config("peer:registry", "registry_user = \"branch\"", "registry_password_file = \"\(files.password)\"", registryPeer),
                 #"\#(f):4: [node]: registry_user must be set only with an etcd:// or etcds:// registry, got registry "peer:registry""#),
                (config("etcds://10.0.0.1:2379", "registry_tls_server_name = \"10.0.0.1\""),
                 #"\#(f):4: [node]: registry_tls_server_name must be a DNS name (letters, digits, '-' and '.'), got "10.0.0.1""#),
                (config("etcds://10.0.0.1:2379", "registry_tls_server_name = \"etcd example\""),
                 #"\#(f):4: [node]: registry_tls_server_name must be a DNS name"#),
                (config("etcds://10.0.0.1:2379", "registry_user = \"\""), #"\#(f):4: [node]: registry_user must be an etcd user name, got """#),
                (config("etcds://10.0.0.1:2379,10.0.0.1:2379"),
                 #"\#(f):3: [node]: registry must be "etcds://host:port,host:port,…" (distinct members, ports 1…65535)"#),
            ]
            for (text, expected) in cases {
                let message = error(text)
                #expect(message?.hasPrefix(expected) == true, "\(message ?? "no error") for\n\(text)")
            }
        }
    }

    @Test func unusableFilesAreRefusedOnTheirLine() throws {
        try withTemporaryDirectory { dir in
            let files = try makeFiles(in: dir)
            let f = Self.file
            let open = "\(dir)/open.password", group = "\(dir)/group.password", empty = "\(dir)/empty.password"
            let twoLines = "\(dir)/two-lines.password", notPEM = "\(dir)/not.pem", missing = "\(dir)/missing"
            try write("s3cret\n", to: open, mode: 0o644)
            try write("s3cret\n", to: group, mode: 0o640)
            let link = "\(dir)/link.password"
            try write("s3cret\n", to: "\(dir)/target.password", mode: 0o600)
            symlink("\(dir)/target.password", link)
            try write("\n", to: empty, mode: 0o600)
            try write("s3cret\nmore\n", to: twoLines, mode: 0o600)
            try write("hello\n", to: notPEM, mode: 0o644)
            let directory = "\(dir)/directory"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            func auth(_ path: String) -> String {
                config("etcds://10.0.0.1:2379", "registry_tls_ca_file = \"\(files.ca)\"", "registry_user = \"branch\"",
                       "registry_password_file = \"\(path)\"")
            }
            let cases: [(String, String)] = [
                (auth(open), #"\#(f):6: [node]: registry_password_file "\#(open)": \#(open) is readable or writable by group or others (mode 644); run: chmod 600 \#(open)"#),
                (auth(group), #"\#(f):6: [node]: registry_password_file "\#(group)": \#(group) is readable or writable by group or others (mode 640)"#),
                // Checked on the file itself, never through a link (another user's link could name our file).
                (auth(link), #"\#(f):6: [node]: registry_password_file "\#(link)": \#(link) is a symbolic link"#),
                (auth(missing), #"\#(f):6: [node]: registry_password_file "\#(missing)": no such file"#),
                (auth(directory), #"\#(f):6: [node]: registry_password_file "\#(directory)": \#(directory) is not a regular file"#),
                (auth(empty), #"\#(f):6: [node]: registry_password_file "\#(empty)": is empty"#),
                (auth(twoLines), #"\#(f):6: [node]: registry_password_file "\#(twoLines)": must hold one line of UTF-8 text"#),
                (config("etcds://10.0.0.1:2379", "registry_tls_ca_file = \"\(missing)\""),
                 #"\#(f):4: [node]: registry_tls_ca_file "\#(missing)": no such file"#),
                (config("etcds://10.0.0.1:2379", "registry_tls_ca_file = \"\(notPEM)\""),
                 #"\#(f):4: [node]: registry_tls_ca_file "\#(notPEM)": not PEM certificates"#),
                (config("etcds://10.0.0.1:2379", "registry_tls_certificate = \"\(files.certificate)\"",
                        "registry_tls_private_key = \"\(files.certificate)\""),
                 #"\#(f):5: [node]: registry_tls_private_key "\#(files.certificate)": not a PEM private key"#),
                (config("etcds://10.0.0.1:2379", "registry_tls_certificate = \"\(files.certificate)\"",
                        "registry_tls_private_key = \"\(files.otherKey)\""),
                 #"\#(f):5: [node]: registry_tls_private_key "\#(files.otherKey)": TLS setup failed"#),
            ]
            for (text, expected) in cases {
                let message = error(text)
                #expect(message?.hasPrefix(expected) == true, "\(message ?? "no error") for\n\(text)")
                #expect(message?.contains("s3cret") != true, "a password was shown: \(message ?? "")")
            }
        }
    }

    func write(_ text: String, to path: String, mode: Int) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw EtcdTestFailure("openssl \(arguments.first ?? "") exited with \(process.terminationStatus)") }
    }
}
