import Foundation
import Testing

/// `byst peer add|list|rm` through the built binary, on a config file in a temporary directory.
@Suite struct PeerCLITests {
    static func config(keyStore: String) -> String {
        """
        # BYST hub
        [node]
        name = "hub"
        key_store = "\(keyStore)"   # test store

        # Lyon office
        [[peer]]
        name = "branch-1"
        key = "branch-1"
        endpoint = "byst://192.0.2.1:7000"

        # Port forwards
        [[forward]]
        listen = "127.0.0.1:15432"
        peer = "branch-1"
        target = "db.internal:5432"

        """
    }

    @Test func addListRemoveKeepTheRestOfTheFile() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/byst.toml", keys = dir + "/keys"
            let original = Self.config(keyStore: keys)
            try Data(original.utf8).write(to: URL(fileURLWithPath: path))
            chmod(path, 0o600)

            let list = try byst(["peer", "list", "-c", path])
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout == "NAME      ENDPOINT               LINKS  KEY\nbranch-1  byst://192.0.2.1:7000  4      branch-1\n")

            // With its key not in the store yet: added, with a warning naming the fix.
            let added = try byst(["peer", "add", "branch-2", "--key", "b2", "--endpoint", "byst://[2001:db8::2]:7000",
                                  "--links", "2", "--config", path])
            #expect(added.status == 0, "\(added.stderr)")
            #expect(added.stdout == "added peer 'branch-2' to \(path)\n")
            #expect(added.stderr.contains("byst key gen b2"))
            let block = "[[peer]]\nname = \"branch-2\"\nkey = \"b2\"\nendpoint = \"byst://[2001:db8::2]:7000\"\nlinks = 2\n"
            let expected = original.replacingOccurrences(of: "\n\n# Port forwards", with: "\n\n" + block + "\n# Port forwards")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == expected)
            #expect(try fileMode(path) == 0o600)

            // With its key present: no warning; no endpoint: a peer that only dials us.
            #expect(try byst(["key", "gen", "branch-3", "--store", keys]).status == 0)
            let quiet = try byst(["peer", "add", "branch-3", "--key", "branch-3", "-c", path])
            #expect(quiet.status == 0, "\(quiet.stderr)")
            #expect(quiet.stderr.isEmpty)

            let listed = try byst(["peer", "list", "-c", path])
            #expect(listed.stdout == """
                NAME      ENDPOINT                   LINKS  KEY
                branch-1  byst://192.0.2.1:7000      4      branch-1
                branch-2  byst://[2001:db8::2]:7000  2      b2
                branch-3  -                          4      branch-3

                """)

            for name in ["branch-3", "branch-2"] {
                let removed = try byst(["peer", "rm", name, "-c", path])
                #expect(removed.status == 0, "\(removed.stderr)")
                #expect(removed.stdout == "removed peer '\(name)' from \(path)\n")
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == original)
            #expect(try fileMode(path) == 0o600)
        }
    }

    @Test func refusalsAreOneLineWithExitStatus1AndLeaveTheFileAlone() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/byst.toml"
            let original = Self.config(keyStore: dir + "/keys")
            try Data(original.utf8).write(to: URL(fileURLWithPath: path))
            let broken = dir + "/broken.toml"
            try Data("[node]\nname = \"hub\"\nlinks = 4\n".utf8).write(to: URL(fileURLWithPath: broken))
            let cases: [([String], String)] = [
                (["peer", "add", "branch-1", "--key", "k", "-c", path],
                 "byst: error: a peer named 'branch-1' already exists in \(path) (remove it first with: byst peer rm branch-1)\n"),
                (["peer", "add", "b", "--key", "k", "--endpoint", "port:hq", "-c", path],
                 "byst: error: \(path): [[peer]] \"b\": endpoint \"port:hq\" needs a registry: [node] registry = \"peer:NAME\" or \"etcd://host:port,…\"\n"),
                (["peer", "add", "b", "--key", "k", "--endpoint", "192.0.2.9:7000", "-c", path],
                 "byst: error: --endpoint must be \"byst://host:port\", \"http://host:port/path\", \"https://host:port/path\" or \"port:NAME\", got \"192.0.2.9:7000\"\n"),
                (["peer", "add", "b", "--key", "k", "--links", "0", "-c", path],
                 "byst: error: \(path): [[peer]] \"b\": links must be an integer 1…64, got 0\n"),
                (["peer", "add", "bad/name", "--key", "k", "-c", path],
                 "byst: error: \(path): [[peer]] #2: name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got \"bad/name\"\n"),
                (["peer", "rm", "nope", "-c", path], "byst: error: \(path): no [[peer]] named \"nope\"\n"),
                (["peer", "rm", "branch-1", "-c", path],
                 "byst: error: \(path): peer \"branch-1\" is used by the [[forward]] listening on 127.0.0.1:15432; remove that forward first\n"),
                (["peer", "list", "-c", dir + "/missing.toml"], "byst: error: \(dir)/missing.toml: cannot open: No such file or directory\n"),
                (["peer", "list", "-c", broken],
                 "byst: error: \(broken):3: [node]: unknown key \"links\" (expected one of: name, listen, http_listen, https_listen, http_path, tls_certificate, tls_private_key, control_socket, key_store, session_linger, keepalive_interval, dead_link_timeout, idle_keepalive_interval, max_record_payload, compression_level, metrics_listen, metrics_peers, registry, registry_lease, registry_tls_ca_file, registry_tls_certificate, registry_tls_private_key, registry_tls_server_name, registry_user, registry_password_file)\n"),
                (["peer", "add", "b", "--key", "k", "-c", broken],
                 "byst: error: \(broken):3: [node]: unknown key \"links\" (expected one of: name, listen, http_listen, https_listen, http_path, tls_certificate, tls_private_key, control_socket, key_store, session_linger, keepalive_interval, dead_link_timeout, idle_keepalive_interval, max_record_payload, compression_level, metrics_listen, metrics_peers, registry, registry_lease, registry_tls_ca_file, registry_tls_certificate, registry_tls_private_key, registry_tls_server_name, registry_user, registry_password_file)\n"),
            ]
            for (arguments, expected) in cases {
                let run = try byst(arguments)
                #expect(run.status == 1, "\(arguments)")
                #expect(run.stderr == expected, "\(arguments)")
                #expect(run.stdout.isEmpty, "\(arguments)")
            }
            // A missing required option is a usage error: still one line, non-zero.
            let usage = try byst(["peer", "add", "b", "-c", path])
            #expect(usage.status != 0)
            #expect(usage.stderr.hasPrefix("byst: error: "))
            #expect(usage.stderr.split(separator: "\n").count == 1)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == original)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["broken.toml", "byst.toml"])
        }
    }

    @Test func defaultConfigPathIsEtcBystBystToml() throws {
        guard !FileManager.default.fileExists(atPath: "/etc/byst/byst.toml") else { return }
        let run = try byst(["peer", "list"])
        #expect(run.status == 1)
        #expect(run.stderr == "byst: error: /etc/byst/byst.toml: cannot open: No such file or directory\n")
    }
}
