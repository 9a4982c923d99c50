import BYSTProto
import Foundation
import Glibc
import Testing
@testable import BYSTNode

/// `http_proxy_credentials_file`: the key's checks at load, and the file's at peer set-up.
@Suite struct ProxyCredentialsFileTests {
    static let file = "/etc/byst/branch.toml"
    static let head = "[node]\nname = \"hq\"\n[[peer]]\nname = \"b\"\nkey = \"k\"\nendpoint = \"http://hq:8080/byst\"\n"

    @Test func theKeyNeedsAProxyWithoutUserInfo() throws {
        let config = try NodeConfig.parse(Self.head + "http_proxy = \"http://p:3128\"\nhttp_proxy_credentials_file = \"/etc/byst/proxy\"\n",
                                          file: Self.file)
        #expect(config.peers.first?.http.proxyCredentialsFile == "/etc/byst/proxy")
        let cases = [
            ("http_proxy_credentials_file = \"/x\"\n", "http_proxy_credentials_file must be set only with http_proxy"),
            ("http_proxy = \"http://u:p@p:3128\"\nhttp_proxy_credentials_file = \"/x\"\n",
             "http_proxy_credentials_file must be no user info in http_proxy as well (one place for the credentials)"),
        ]
        for (body, expected) in cases {
            do {
                _ = try NodeConfig.parse(Self.head + body, file: Self.file)
                Issue.record("accepted: \(body)")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }

    @Test func theFileMustBePrivateAndHoldOneLine() throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ text: String, mode: mode_t) -> String {
            let path = dir + "/credentials-\(mode)-\(text.count)"
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            chmod(path, mode)
            return path
        }
        #expect(try ProxyCredentialsFile.read(write("CORP\\alice:pa:ss\n", mode: 0o600))
                == ProxyCredentials(user: "CORP\\alice", password: "pa:ss"))
        #expect(try ProxyCredentialsFile.read(write("bob:\r\n", mode: 0o400)) == ProxyCredentials(user: "bob", password: ""))
        let refused: [(String, String)] = [
            (write("alice:secret\n", mode: 0o644), "readable or writable by group or others"),
            (write("alice:secret\nmore\n", mode: 0o600), "one line user:password"),
            (write("no-colon\n", mode: 0o600), "one line user:password"),
            (write(":secret\n", mode: 0o600), "one line user:password"),
            (dir + "/missing", "no such file"),
        ]
        for (path, expected) in refused {
            do {
                _ = try ProxyCredentialsFile.read(path)
                Issue.record("accepted \(path)")
            } catch {
                #expect(error.description.hasPrefix("http_proxy_credentials_file \"\(path)\": "), "\(error)")
                #expect(error.description.contains(expected), "\(error)")
            }
        }
        let link = dir + "/link"
        symlink(write("alice:secret\n", mode: 0o600), link)
        #expect(throws: ProxyCredentialsFile.Failure.self) { try ProxyCredentialsFile.read(link) }
    }
}
