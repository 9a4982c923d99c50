import Foundation
import Testing
@testable import BYSTNode
import BYSTProto

/// The TOML config: schema, defaults, one-line errors with their line, and comment-keeping edits.
@Suite struct ConfigTests {
    static let file = "/etc/byst/hub.toml"

    static let fullText = """
        # BYST hub: every key set
        [node]
        name = "hub"                      # sent in the hello
        listen = ["0.0.0.0:7000", "[::1]:7001"]
        control_socket = "/run/byst/test.sock"
        key_store = "/tmp/byst-keys"
        session_linger = "5m"
        keepalive_interval = "250ms"
        dead_link_timeout = 3
        max_record_payload = 131072

        [tun]
        name = "byst-hub"
        address = ["10.0.0.1/24", "fd00::1/64"]
        mtu = 1400

        # Lyon office
        [[peer]]
        name = "branch-1"
        key = "branch-1"
        endpoint = "byst://192.0.2.1:7000"
        links = 8
        allow_targets = [
          "127.0.0.1:5432",   # the database
          "db.internal:*",
          "*:80",
        ]
        allowed_ips = ["10.1.0.0/16", "fd00:1::/64"]

        [[peer]]
        name = "branch-2"
        key = "branch-2-key"
        allowed_ips = ["10.2.3.4/16", "10.0.0.2", "fd00::2/128"]   # host bits are cleared

        # Port forwards
        [[forward]]
        listen = "127.0.0.1:15432"
        peer = "branch-1"
        target = "db.internal:5432"

        [[forward]]
        listen = "[::1]:8080"
        peer = "branch-2"
        target = "[2001:db8::1]:80"

        """

    static let fullConfig = NodeConfig(
        name: "hub",
        listen: [HostPort(host: "0.0.0.0", port: 7000), HostPort(host: "::1", port: 7001)],
        controlSocket: "/run/byst/test.sock",
        keyStore: "/tmp/byst-keys",
        sessionLinger: .seconds(300),
        keepaliveInterval: .milliseconds(250),
        deadLinkTimeout: .seconds(3),
        maxRecordPayload: 131072,
        tun: TunConfig(name: "byst-hub", addresses: prefixes("10.0.0.1/24", "fd00::1/64"), mtu: 1400),
        peers: [
            PeerConfig(name: "branch-1", key: "branch-1", endpoint: .byst(HostPort(host: "192.0.2.1", port: 7000)), links: 8,
                       allowTargets: [TargetRule(host: .exact("127.0.0.1"), port: .exact(5432)),
                                      TargetRule(host: .exact("db.internal"), port: .any),
                                      TargetRule(host: .any, port: .exact(80))],
                       allowedIPs: prefixes("10.1.0.0/16", "fd00:1::/64")),
            PeerConfig(name: "branch-2", key: "branch-2-key",
                       allowedIPs: prefixes("10.2.0.0/16", "10.0.0.2/32", "fd00::2/128")),
        ],
        forwards: [
            ForwardConfig(listen: HostPort(host: "127.0.0.1", port: 15432), peer: "branch-1",
                          target: HostPort(host: "db.internal", port: 5432)),
            ForwardConfig(listen: HostPort(host: "::1", port: 8080), peer: "branch-2",
                          target: HostPort(host: "2001:db8::1", port: 80)),
        ]
    )

    /// Prefixes written in a test; an unparsable one is left out (and the comparison fails).
    static func prefixes(_ texts: String...) -> [IPPrefix] { texts.compactMap(IPPrefix.init) }

    @Test func fullConfigParsesToEveryValue() throws {
        #expect(try NodeConfig.parse(Self.fullText, file: Self.file) == Self.fullConfig)
        try withTemporaryDirectory { dir in
            let path = dir + "/hub.toml"
            try AtomicFile.write(Array(Self.fullText.utf8), to: path)
            #expect(try NodeConfig.load(path: path) == Self.fullConfig)
        }
        let config = Self.fullConfig
        #expect(config.listen.map(\.description) == ["0.0.0.0:7000", "[::1]:7001"])
        #expect(config.peers[0].endpoint?.description == "byst://192.0.2.1:7000")
        #expect(config.peers[0].allowTargets.map(\.description) == ["127.0.0.1:5432", "db.internal:*", "*:80"])
        #expect(config.forwards[1].target.description == "[2001:db8::1]:80")
        #expect(config.tun?.addresses.map(\.description) == ["10.0.0.1/24", "fd00::1/64"])
        #expect(config.peers[1].allowedIPs.map(\.description) == ["10.2.0.0/16", "10.0.0.2/32", "fd00::2/128"])
    }

    @Test func minimalConfigTakesTheDefaults() throws {
        let config = try NodeConfig.parse("[node]\nname = \"hub\"\n", file: Self.file)
        #expect(config == NodeConfig(name: "hub"))
        #expect(config.listen.isEmpty)
        #expect(config.controlSocket == "/run/byst/hub.sock")
        #expect(config.keyStore == "/etc/byst/keys")
        #expect(config.sessionLinger == .seconds(60))
        #expect(config.keepaliveInterval == .seconds(1))
        #expect(config.deadLinkTimeout == .seconds(5))
        #expect(config.maxRecordPayload == 65536)
        let peer = try NodeConfig.parse("[node]\nname = \"hub\"\n[[peer]]\nname = \"b\"\nkey = \"b\"\n", file: Self.file).peers[0]
        #expect(peer == PeerConfig(name: "b", key: "b", endpoint: nil, links: 4, allowTargets: []))
        #expect(!peer.allows(host: "127.0.0.1", port: 22))
    }

    @Test func durationsInEveryUnit() throws {
        let cases: [(String, Duration)] = [
            ("\"250ms\"", .milliseconds(250)), ("\"30s\"", .seconds(30)), ("\"5m\"", .seconds(300)),
            ("\"1h\"", .seconds(3600)), ("90", .seconds(90)),
        ]
        for (value, expected) in cases {
            let config = try NodeConfig.parse("[node]\nname = \"hub\"\nsession_linger = \(value)\n", file: Self.file)
            #expect(config.sessionLinger == expected, "\(value)")
        }
        #expect(Duration.milliseconds(250).configText == "250ms")
        #expect(Duration.seconds(90).configText == "90s")
        #expect(Duration.seconds(7200).configText == "2h")
    }

    /// Every kind of bad config gives one precise line, naming the file, the line and the key.
    @Test func badConfigsGiveOnePreciseLine() throws {
        let node = "[node]\nname = \"hub\"\n"
        let peer = "[[peer]]\nname = \"branch-1\"\nkey = \"branch-1\"\n"
        let f = Self.file
        let cases: [(String, String)] = [
            // Missing, unknown and mistyped keys and tables.
            ("# empty\n", "\(f): missing required table [node]"),
            ("[nodes]\nname = \"hub\"\n", #"\#(f):1: unknown key "nodes" (expected one of: [node], [[peer]], [[forward]])"#),
            (node + "listn = [\"0.0.0.0:7000\"]\n",
             #"\#(f):3: [node]: unknown key "listn" (expected one of: name, listen, control_socket, key_store, session_linger, keepalive_interval, dead_link_timeout, max_record_payload)"#),
            (node + "\n" + peer + "linkz = 2\n",
             #"\#(f):7: [[peer]] "branch-1": unknown key "linkz" (expected one of: name, key, endpoint, links, allow_targets)"#),
            ("[node]\nlisten = []\n", #"\#(f):1: [node]: missing required key "name""#),
            (node + peer + "links = \"4\"\n", #"\#(f):6: [[peer]] "branch-1": links must be an integer 1…64, got string "4""#),
            (node + peer + "links = 0\n", #"\#(f):6: [[peer]] "branch-1": links must be an integer 1…64, got 0"#),
            (node + "listen = \"0.0.0.0:7000\"\n",
             #"\#(f):3: [node]: listen must be an array of "host:port" with a port 1…65535 (IPv6 as "[::1]:7000") strings, got string "0.0.0.0:7000""#),
            (node + "[peer]\nname = \"x\"\n", #"\#(f):3: peer must be an array of tables, written [[peer]], got a table"#),
            (node + "max_record_payload = 512\n", #"\#(f):3: [node]: max_record_payload must be an integer 1024…1048576, got 512"#),
            ("[node]\nname = \"\"\n", #"\#(f):2: [node]: name must be a string of 1…64 bytes, got """#),
            (node + "control_socket = \"/run/\(String(repeating: "s", count: 103))\"\n",
             #"\#(f):3: [node]: control_socket must be a path of 1…107 bytes, got "/run/\#(String(repeating: "s", count: 103))""#),
            (node + "[[peer]]\nname = \"bad/name\"\nkey = \"k\"\n",
             #"\#(f):4: [[peer]] #1: name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got "bad/name""#),
            // Durations.
            (node + "session_linger = \"5 minutes\"\n",
             #"\#(f):3: [node]: session_linger must be a positive duration like "250ms", "30s", "5m", "1h" or an integer number of seconds, got "5 minutes""#),
            (node + "keepalive_interval = 0\n",
             #"\#(f):3: [node]: keepalive_interval must be a positive duration like "250ms", "30s", "5m", "1h" or an integer number of seconds, got 0"#),
            (node + "keepalive_interval = \"2s\"\ndead_link_timeout = \"2000ms\"\n",
             #"\#(f):4: [node]: dead_link_timeout must be longer than keepalive_interval (2s), got 2s"#),
            (node + "keepalive_interval = \"10s\"\n", #"\#(f):3: [node]: dead_link_timeout must be longer than keepalive_interval (10s), got 5s"#),
            // Addresses and ports.
            (node + "listen = [\"0.0.0.0:70000\"]\n",
             #"\#(f):3: [node]: listen must be "host:port" with a port 1…65535 (IPv6 as "[::1]:7000"), got "0.0.0.0:70000""#),
            (node + "listen = [\"::1:7000\"]\n",
             #"\#(f):3: [node]: listen must be "host:port" with a port 1…65535 (IPv6 as "[::1]:7000"), got "::1:7000""#),
            (node + "listen = [\"0.0.0.0:7000\", \"0.0.0.0:7000\"]\n", #"\#(f):3: [node]: duplicate listen address "0.0.0.0:7000""#),
            (node + peer + "allow_targets = [\"db:*\", \"*\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allow_targets must be "host:port" where host or port may be "*" (IPv6 as "[::1]:5432"), got "*""#),
            (node + peer + "[[forward]]\nlisten = \"127.0.0.1:1\"\npeer = \"branch-1\"\ntarget = \"db:0\"\n",
             #"\#(f):9: [[forward]] #1: target must be "host:port" with a port 1…65535 (IPv6 as "[::1]:7000"), got "db:0""#),
            // Cross-references and duplicates.
            (node + peer + "\n[[forward]]\nlisten = \"127.0.0.1:1\"\npeer = \"branch-1\"\ntarget = \"db:1\"\n"
                + "\n[[forward]]\nlisten = \"127.0.0.1:2\"\npeer = \"nope\"\ntarget = \"db:1\"\n",
             #"\#(f):14: [[forward]] #2: peer "nope" is not defined in any [[peer]]"#),
            (node + peer + "\n[[forward]]\nlisten = \"127.0.0.1:1\"\npeer = \"branch-1\"\ntarget = \"db:1\"\n"
                + "\n[[forward]]\nlisten = \"127.0.0.1:1\"\npeer = \"branch-1\"\ntarget = \"db:2\"\n",
             #"\#(f):13: [[forward]] #2: duplicate forward listen address "127.0.0.1:1" (first used on line 8)"#),
            (node + peer + "\n" + peer.replacingOccurrences(of: "key = \"branch-1\"", with: "key = \"other\""),
             #"\#(f):8: [[peer]] "branch-1": duplicate peer name "branch-1" (first used on line 4)"#),
            // Endpoints and features not there yet.
            (node + peer + "endpoint = \"http://proxy.example:8080/byst\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint "http://proxy.example:8080/byst": the HTTP transport (http://) is not supported yet"#),
            (node + peer + "endpoint = \"https://hub.example/byst\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint "https://hub.example/byst": the HTTPS transport (https://) is not supported yet"#),
            (node + peer + "endpoint = \"port:hq\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint "port:hq": an HA port name (port:NAME) is not supported yet"#),
            (node + peer + "endpoint = \"tcp://192.0.2.1:7000\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint must be "byst://host:port", got "tcp://192.0.2.1:7000""#),
            (node + peer + "endpoint = \"byst://192.0.2.1\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint must be "byst://host:port" with a port 1…65535, got "byst://192.0.2.1""#),
            (node + peer + "allowed_ips = [\"10.1.0.0/16\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips: routing IP prefixes to a peer (TUN) is not supported yet"#),
            // Text that is not a document; control characters stay escaped on the one line.
            ("[node]\nname = \"a\u{0}b\"\n", "\(f):2: contains a NUL byte"),
            (node + "[[peer]]\nname = \"a\\nb\"\nkey = \"k\"\n",
             #"\#(f):4: [[peer]] #1: name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got "a\nb""#),
        ]
        for (text, expected) in cases {
            do {
                let config = try NodeConfig.parse(text, file: Self.file)
                Issue.record("accepted \(text.debugDescription) as \(config)")
            } catch {
                #expect(error.description == expected, "\(text.debugDescription)")
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test func syntaxErrorsCarryTheParsersLineAndColumn() throws {
        let cases: [(String, String)] = [
            ("[node]\nname = hub\n", "\(Self.file):2:8: syntax error"),
            ("[node]\nname = \"hub\"\nlisten = [\n  \"0.0.0.0:7000\"\n  \"0.0.0.0:7001\"\n]\n", "\(Self.file):5:3: syntax error"),
            ("[node]\nname = \"hub\"\n[node]\n", "\(Self.file):3:1: syntax error"),
        ]
        for (text, prefix) in cases {
            #expect(throws: ConfigError.self) { try NodeConfig.parse(text, file: Self.file) }
            do throws(ConfigError) {
                _ = try NodeConfig.parse(text, file: Self.file)
            } catch {
                #expect(error.description.hasPrefix(prefix), "\(error)")
                guard case .syntax = error.reason else { Issue.record("\(error.reason)"); continue }
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test func fileErrors() throws {
        try withTemporaryDirectory { dir in
            let missing = dir + "/missing.toml"
            #expect(throws: ConfigError(file: missing, reason: .unreadable(operation: "open", detail: "No such file or directory"))) {
                try NodeConfig.load(path: missing)
            }
            let binary = dir + "/binary.toml"
            try AtomicFile.write(Array("[node]\n".utf8) + [0xFF, 0xFE, 0x0A], to: binary)
            #expect(throws: ConfigError(file: binary, line: 2, reason: .notText("not UTF-8 text"))) {
                try NodeConfig.load(path: binary)
            }
        }
    }

    @Test func targetRulesMatchExactHostOrPortOrAny() throws {
        let rules = try NodeConfig.parse(
            "[node]\nname = \"hub\"\n[[peer]]\nname = \"b\"\nkey = \"b\"\nallow_targets = [\"127.0.0.1:5432\", \"DB.internal:*\", \"*:80\", \"[::1]:22\"]\n",
            file: Self.file
        ).peers[0]
        #expect(rules.allows(host: "127.0.0.1", port: 5432))
        #expect(!rules.allows(host: "127.0.0.1", port: 5433))
        #expect(rules.allows(host: "db.internal", port: 1))
        #expect(rules.allows(host: "db.INTERNAL", port: 65535))
        #expect(!rules.allows(host: "db.internal.evil", port: 5432))
        #expect(rules.allows(host: "anything.example", port: 80))
        #expect(!rules.allows(host: "anything.example", port: 443))
        #expect(rules.allows(host: "::1", port: 22))
        #expect(!rules.allows(host: "::1", port: 23))
        let any = TargetRule(host: .any, port: .any)
        #expect(any.matches(host: "x", port: 1))
        #expect(any.description == "*:*")
    }

    @Test func sourceMapSkipsStringsAndMultiLineValues() throws {
        let text = """
            [node]
            name = "a # not a comment [x]"
            listen = [
              "0.0.0.0:7000", # comment
              "key = value",
            ]
            control_socket = '''
            [[peer]]
            links = 3
            '''
            key_store = "/k"
            [[peer]]
            links = 2
            """
        let source = ConfigSource(text)
        #expect(source.blocks.map(\.name) == [nil, "node", "peer"])
        #expect(source.line(ofKey: "key_store", inTable: "node", index: nil) == 11)
        #expect(source.line(ofKey: "links", inTable: "peer", index: 0) == 13)
        #expect(source.line(ofKey: "missing", inTable: "peer", index: 0) == 12)
        #expect(source.kinds[4] == .continuation)
        #expect(source.kinds[7] == .continuation)
    }
}

/// `ConfigEditor`: comment-keeping `[[peer]]` edits, compared as whole texts.
extension ConfigTests {
    static let commented = """
        # BYST hub
        [node]
        name = "hub"   # sent in the hello

        # Lyon office
        [[peer]]
        name = "branch-1"
        key = "branch-1"
        # links = 8 once the line is upgraded
        endpoint = "byst://192.0.2.1:7000"

        # Paris office
        [[peer]]
        name = "branch-2"
        key = "branch-2"
        links = 2
        # end of Paris

        # Port forwards
        [[forward]]
        listen = "127.0.0.1:15432"
        peer = "branch-2"
        target = "db.internal:5432"

        """

    static let branch3 = PeerConfig(name: "branch-3", key: "k3", endpoint: .byst(HostPort(host: "2001:db8::3", port: 7000)),
                                    links: 16)

    @Test func addingAPeerKeepsEveryOtherLine() throws {
        let added = try ConfigEditor.addingPeer(Self.branch3, to: Self.commented, file: Self.file)
        #expect(added == """
            # BYST hub
            [node]
            name = "hub"   # sent in the hello

            # Lyon office
            [[peer]]
            name = "branch-1"
            key = "branch-1"
            # links = 8 once the line is upgraded
            endpoint = "byst://192.0.2.1:7000"

            # Paris office
            [[peer]]
            name = "branch-2"
            key = "branch-2"
            links = 2
            # end of Paris

            [[peer]]
            name = "branch-3"
            key = "k3"
            endpoint = "byst://[2001:db8::3]:7000"
            links = 16

            # Port forwards
            [[forward]]
            listen = "127.0.0.1:15432"
            peer = "branch-2"
            target = "db.internal:5432"

            """)
        #expect(try NodeConfig.parse(added, file: Self.file).peers.last == Self.branch3)
        // Removing it again gives back the original, byte for byte.
        #expect(try ConfigEditor.removingPeer(named: "branch-3", from: added, file: Self.file) == Self.commented)
    }

    @Test func removingAPeerTakesItsCommentsAndKeepsTheOthers() throws {
        let removed = try ConfigEditor.removingPeer(named: "branch-1", from: Self.commented, file: Self.file)
        #expect(removed == """
            # BYST hub
            [node]
            name = "hub"   # sent in the hello

            # Paris office
            [[peer]]
            name = "branch-2"
            key = "branch-2"
            links = 2
            # end of Paris

            # Port forwards
            [[forward]]
            listen = "127.0.0.1:15432"
            peer = "branch-2"
            target = "db.internal:5432"

            """)
    }

    @Test func addingToFilesWithoutPeers() throws {
        let peer = PeerConfig(name: "b", key: "b")
        let cases: [(String, String)] = [
            ("[node]\nname = \"hub\"\n# the end\n", "[node]\nname = \"hub\"\n# the end\n\n[[peer]]\nname = \"b\"\nkey = \"b\"\n"),
            ("[node]\nname = \"hub\"", "[node]\nname = \"hub\"\n\n[[peer]]\nname = \"b\"\nkey = \"b\"\n"),
            ("[node]\nname = \"hub\"\n\n", "[node]\nname = \"hub\"\n\n[[peer]]\nname = \"b\"\nkey = \"b\"\n"),
            ("[node]\r\nname = \"hub\"\r\n", "[node]\r\nname = \"hub\"\r\n\r\n[[peer]]\r\nname = \"b\"\r\nkey = \"b\"\r\n"),
        ]
        for (original, expected) in cases {
            let added = try ConfigEditor.addingPeer(peer, to: original, file: Self.file)
            #expect(added == expected, "\(original.debugDescription)")
        }
        let original = "[node]\nname = \"hub\"\n# the end\n"
        let added = try ConfigEditor.addingPeer(peer, to: original, file: Self.file)
        #expect(try ConfigEditor.removingPeer(named: "b", from: added, file: Self.file) == original)
    }

    @Test func refusedEdits() throws {
        let f = Self.file
        let cases: [(() throws(ConfigError) -> String, String)] = [
            ({ () throws(ConfigError) in try ConfigEditor.addingPeer(PeerConfig(name: "branch-1", key: "x"), to: Self.commented, file: f) },
             #"\#(f): [[peer]] "branch-1": duplicate peer name "branch-1" (first used on line 7)"#),
            // The new block is not in the file yet: no line number.
            ({ () throws(ConfigError) in try ConfigEditor.addingPeer(PeerConfig(name: "branch-3", key: "k", links: 65), to: Self.commented, file: f) },
             #"\#(f): [[peer]] "branch-3": links must be an integer 1…64, got 65"#),
            ({ () throws(ConfigError) in try ConfigEditor.addingPeer(PeerConfig(name: "x", key: "k"), to: "[node]\nname = 1\n", file: f) },
             #"\#(f):2: [node]: name must be a string of 1…64 bytes, got integer 1"#),
            ({ () throws(ConfigError) in try ConfigEditor.removingPeer(named: "nope", from: Self.commented, file: f) },
             #"\#(f): no [[peer]] named "nope""#),
            ({ () throws(ConfigError) in try ConfigEditor.removingPeer(named: "branch-2", from: Self.commented, file: f) },
             #"\#(f): peer "branch-2" is used by the [[forward]] listening on 127.0.0.1:15432; remove that forward first"#),
            ({ () throws(ConfigError) in
                try ConfigEditor.removingPeer(named: "a", from: "peer = [{ name = \"a\", key = \"a\" }]\n[node]\nname = \"hub\"\n", file: f)
             },
             "\(f): peers are not all written as [[peer]] tables; edit the file by hand"),
            ({ () throws(ConfigError) in
                try ConfigEditor.addingPeer(PeerConfig(name: "b", key: "b"), to: "peer = [{ name = \"a\", key = \"a\" }]\n[node]\nname = \"hub\"\n", file: f)
             },
             "\(f): peers are not all written as [[peer]] tables; edit the file by hand"),
        ]
        for (edit, expected) in cases {
            do throws(ConfigError) {
                let text = try edit()
                Issue.record("edited: \(text)")
            } catch {
                #expect(error.description == expected)
            }
        }
    }

    @Test func updateReplacesTheFileKeepingItsMode() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/hub.toml"
            try AtomicFile.write(Array(Self.commented.utf8), to: path, mode: 0o640)
            let config = try ConfigEditor.update(path: path) { (text: String) throws(ConfigError) -> String in
                try ConfigEditor.addingPeer(Self.branch3, to: text, file: path)
            }
            #expect(config.peers.map(\.name) == ["branch-1", "branch-2", "branch-3"])
            #expect(try fileMode(path) == 0o640)
            #expect(try String(contentsOfFile: path, encoding: .utf8).contains("name = \"branch-3\""))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["hub.toml"])
            // An edit that breaks the file is not written.
            #expect(throws: ConfigError.self) {
                try ConfigEditor.update(path: path) { (text: String) throws(ConfigError) -> String in text + "bogus = 1\n" }
            }
            #expect(try NodeConfig.load(path: path) == config)
        }
    }
}
