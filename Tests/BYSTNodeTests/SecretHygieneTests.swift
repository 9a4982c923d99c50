import BYSTProto
import Foundation
import Logging
import Testing
@testable import BYSTNode

/// Secrets at rest and in the process (issue 21 points 8–9): the key store is read only from
/// a private regular file we own, a config holding a proxy password must be private too,
/// no core dump can carry keys, and peer-supplied strings cannot forge log lines.
@Suite(.serialized) struct SecretHygieneTests {
    private func savedStore(_ dir: String) throws -> String {
        let path = dir + "/keys"
        var store = try KeyStore.load(path: path)
        try store.add(name: "hq", key: try .generate())
        try store.save()
        return path
    }

    /// A symbolic link in place of the store (e.g. planted in a writable directory to make
    /// the daemon read — and reveal in errors — another file) is refused, not followed.
    @Test func aKeyStoreSymlinkIsNotFollowed() throws {
        try withTemporaryDirectory { dir in
            let real = try savedStore(dir)
            let link = dir + "/link"
            #expect(symlink(real, link) == 0)
            let text = Result(catching: { try KeyStore.load(path: link) }).failureText
            #expect(text.contains("symbolic link"), "\(text)")
            #expect(try KeyStore.load(path: real).entries.count == 1)
        }
    }

    /// A store owned by another user (who could rewrite it) is refused, even with mode 0600.
    @Test func aKeyStoreOwnedBySomeoneElseIsRefused() throws {
        try withTemporaryDirectory { dir in
            let path = try savedStore(dir)
            // As root (CI, the daemon) any other uid will do; as a user, chown is not allowed.
            guard geteuid() == 0 else { return #expect(chown(path, 65534, 65534) != 0) }
            #expect(chown(path, 65534, 65534) == 0)
            let text = Result(catching: { try KeyStore.load(path: path) }).failureText
            #expect(text.contains("owned by uid 65534"), "\(text)")
            #expect(chown(path, 0, 0) == 0)
            #expect(try KeyStore.load(path: path).entries.count == 1)
        }
    }

    /// A config whose proxy URL holds a password is held to the key store's rule.
    @Test func aConfigWithAProxyPasswordMustBePrivate() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/byst.toml"
            let text = """
                [node]
                name = "branch"
                [[peer]]
                name = "hq"
                key = "hq"
                endpoint = "http://hq.example:80"
                http_proxy = "http://alice:s3cret@proxy.corp:3128"
                """
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o644)
            let refused = Result(catching: { try NodeConfig.load(path: path) }).failureText
            #expect(refused.contains("http_proxy holds a password, but the file is readable or writable by group or others (mode 644)"), "\(refused)")
            #expect(!refused.contains("s3cret"))
            chmod(path, 0o600)
            #expect(try NodeConfig.load(path: path).peers.first?.http.proxy?.password == "s3cret")
            // Without a password the file may be world-readable as before.
            try text.replacingOccurrences(of: "alice:s3cret@", with: "").write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o644)
            #expect(try NodeConfig.load(path: path).peers.count == 1)
        }
    }

    @Test func theProcessCannotDumpCore() {
        ProcessHardening.protectSecrets()
        #expect(!ProcessHardening.isDumpable)
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit) == 0)
        #expect(limit.rlim_cur == 0 && limit.rlim_max == 0)
    }

    /// A node name or registry message with a newline and a terminal escape, as a peer could
    /// send it: the text log shows it escaped on one line.
    @Test func textLogsEscapeControlCharacters() {
        let hostile = "lyon\n2026-12-06T00:00:00+0000 critical byst: forged\u{1B}[2J"
        let event = LogEvent(level: .info, message: "peer \(hostile) said hello", metadata: ["peer": .string(hostile)],
                             source: nil, file: #fileID, function: #function, line: #line)
        let escaped = TextLogHandler.escaping(event, metadata: ["node": .string("hub\r")])
        let message = escaped.message.description
        #expect(!message.contains("\n") && !message.contains("\u{1B}"))
        #expect(message.contains("lyon\\n2026-12-06"))
        #expect(message.contains("\\u{1B}[2J"))
        #expect(escaped.metadata?["peer"]?.description.contains("\n") == false)
        #expect(escaped.metadata?["node"]?.description == "hub\\r")
    }
}

extension Result {
    /// The error's description, or "" on success.
    var failureText: String {
        if case .failure(let error) = self { return "\(error)" }
        return ""
    }
}
