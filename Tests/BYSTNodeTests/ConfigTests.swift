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
            ("[nodes]\nname = \"hub\"\n", #"\#(f):1: unknown key "nodes" (expected one of: [node], [tun], [ha], [limits], [[peer]], [[forward]])"#),
            (node + "listn = [\"0.0.0.0:7000\"]\n",
             #"\#(f):3: [node]: unknown key "listn" (expected one of: name, listen, http_listen, https_listen, http_path, tls_certificate, tls_private_key, control_socket, key_store, session_linger, keepalive_interval, dead_link_timeout, idle_keepalive_interval, max_record_payload, compression_level, metrics_listen, metrics_peers, registry, registry_lease, registry_tls_ca_file, registry_tls_certificate, registry_tls_private_key, registry_tls_server_name, registry_user, registry_password_file)"#),
            (node + "\n" + peer + "linkz = 2\n",
             #"\#(f):7: [[peer]] "branch-1": unknown key "linkz" (expected one of: name, key, endpoint, links, allow_targets, allowed_ips, http_mode, http_proxy, proxy_mode, http_proxy_credentials_file, tls_ca_file, tls_pin_sha256, tls_server_name, recycle_after, recycle_bytes, compression, packet_striping, ports, gateways, ha_port, uplinks)"#),
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
            (node + "keepalive_interval = \"2s\"\nidle_keepalive_interval = \"1500ms\"\n",
             #"\#(f):4: [node]: idle_keepalive_interval must be at least keepalive_interval (2s), got 1500ms"#),
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
            // Endpoints: an HA port needs a registry to resolve it.
            (node + peer + "endpoint = \"port:hq\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint "port:hq" needs a registry: [node] registry = "peer:NAME" or "etcd://host:port,…""#),
            (node + peer + "endpoint = \"tcp://192.0.2.1:7000\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint must be "byst://host:port", "http://host:port/path", "https://host:port/path" or "port:NAME", got "tcp://192.0.2.1:7000""#),
            (node + peer + "endpoint = \"byst://192.0.2.1\"\n",
             #"\#(f):6: [[peer]] "branch-1": endpoint must be "byst://host:port" with a port 1…65535, got "byst://192.0.2.1""#),
            // [tun].
            (node + "[tun]\nname = \"byst1\"\n", #"\#(f):3: [tun]: missing required key "address""#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\"]\naddresses = [\"fd00::1/64\"]\n",
             #"\#(f):5: [tun]: unknown key "addresses" (expected one of: name, address, mtu, offload, queues, data_plane)"#),
            (node + "[[tun]]\naddress = [\"10.0.0.1/24\"]\n", #"\#(f):3: tun must be a table, written [tun], got an array"#),
            (node + "[tun]\naddress = []\n",
             #"\#(f):4: [tun]: address must be a non-empty array of interface addresses like "10.0.1.1/24" or "fd00:1::1/64", got an empty array"#),
            (node + "[tun]\naddress = \"10.0.0.1/24\"\n",
             #"\#(f):4: [tun]: address must be a non-empty array of interface addresses like "10.0.1.1/24" or "fd00:1::1/64", got string "10.0.0.1/24""#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\", \"10.0.0.1\"]\n",
             #"\#(f):4: [tun]: address must be an address with its prefix length, like "10.0.1.1/24" or "fd00:1::1/64", got "10.0.0.1""#),
            (node + "[tun]\naddress = [\"10.0.0.1/33\"]\n",
             #"\#(f):4: [tun]: address must be an address with its prefix length, like "10.0.1.1/24" or "fd00:1::1/64", got "10.0.0.1/33""#),
            (node + "[tun]\naddress = [\"fd00::1/0\"]\n",
             #"\#(f):4: [tun]: address must be an address with its prefix length, like "10.0.1.1/24" or "fd00:1::1/64", got "fd00::1/0""#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\", \"10.0.0.1/16\"]\n", #"\#(f):4: [tun]: duplicate address "10.0.0.1/16""#),
            (node + "[tun]\nname = \"byst-hub-tunnel0\"\naddress = [\"10.0.0.1/24\"]\n",
             #"\#(f):4: [tun]: name must be an interface name of 1-15 letters, digits, '.', '_' or '-' (not "." or ".."), got "byst-hub-tunnel0""#),
            (node + "[tun]\nname = \"..\"\naddress = [\"10.0.0.1/24\"]\n",
             #"\#(f):4: [tun]: name must be an interface name of 1-15 letters, digits, '.', '_' or '-' (not "." or ".."), got "..""#),
            (node + "[tun]\nname = \"tun:0\"\naddress = [\"10.0.0.1/24\"]\n",
             #"\#(f):4: [tun]: name must be an interface name of 1-15 letters, digits, '.', '_' or '-' (not "." or ".."), got "tun:0""#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\"]\nmtu = 575\n", #"\#(f):5: [tun]: mtu must be an integer 576…65535, got 575"#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\"]\nmtu = 65536\n", #"\#(f):5: [tun]: mtu must be an integer 576…65535, got 65536"#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\"]\nmtu = \"1500\"\n",
             #"\#(f):5: [tun]: mtu must be an integer 576…65535, got string "1500""#),
            (node + "[tun]\naddress = [\"10.0.0.1/24\", \"fd00::1/64\"]\nmtu = 1279\n",
             #"\#(f):5: [tun]: mtu must be an integer 1280…65535 with an IPv6 address (fd00::1/64), got 1279"#),
            // allowed_ips.
            (node + peer + "allowed_ips = \"10.1.0.0/16\"\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an array of IP prefix strings like "10.0.2.0/24" or "fd00:2::/64", got string "10.1.0.0/16""#),
            (node + peer + "allowed_ips = [\"10.1.0.0/16\", \"10.1.0.0/33\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an IP prefix like "10.0.2.0/24" or "fd00:2::/64", got "10.1.0.0/33""#),
            (node + peer + "allowed_ips = [\"10.1.0.0/16 \"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an IP prefix like "10.0.2.0/24" or "fd00:2::/64", got "10.1.0.0/16 ""#),
            (node + peer + "allowed_ips = [\"fd00::+1/64\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an IP prefix like "10.0.2.0/24" or "fd00:2::/64", got "fd00::+1/64""#),
            (node + peer + "allowed_ips = [\"1.2.3.4::/64\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an IP prefix like "10.0.2.0/24" or "fd00:2::/64", got "1.2.3.4::/64""#),
            (node + peer + "allowed_ips = [\"010.1.0.0/16\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an IP prefix like "10.0.2.0/24" or "fd00:2::/64", got "010.1.0.0/16""#),
            (node + peer + "allowed_ips = [\"db.internal/32\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips must be an IP prefix like "10.0.2.0/24" or "fd00:2::/64", got "db.internal/32""#),
            (node + peer + "allowed_ips = [\"0.0.0.0/0\"]\n",
             #"\#(f):6: [[peer]] "branch-1": allowed_ips "0.0.0.0/0": a default route through the tunnel (prefix length 0) is not supported yet"#),
            (node + peer + "allowed_ips = [\"10.1.0.0/16\", \"10.1.2.3/16\"]\n",
             #"\#(f):6: [[peer]] "branch-1": duplicate allowed_ips prefix "10.1.0.0/16""#),
            (node + peer + "allowed_ips = [\"10.1.0.0/16\"]\n\n[[peer]]\nname = \"branch-2\"\nkey = \"b2\"\n"
                + "allowed_ips = [\"fd00:2::/64\", \"10.1.9.9/16\"]\n",
             #"\#(f):11: [[peer]] "branch-2": allowed_ips "10.1.0.0/16" is already routed to peer "branch-1" (line 6)"#),
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

    @Test func prefixesWithANulByteAreRefused() {
        for text in ["10.1.0.0\u{0}junk/16", "10.1.0.0\u{0}/8", "10.1.0.0/16\u{0}", "fd00::\u{0}1/64"] {
            guard case .failure = IPPrefix.parseAllowedIP(text) else {
                Issue.record("accepted \(text.debugDescription)")
                continue
            }
        }
        #expect((try? IPPrefix.parseAllowedIP("10.1.0.9/16").get())?.description == "10.1.0.0/16")
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

/// `[tun]`, `allowed_ips`, and the example configs shipped in deploy/.
extension ConfigTests {
    static let routed = """
        [node]
        name = "hub"

        [tun]
        address = ["10.0.0.1/24", "fd00::1/64"]   # host bits kept
        mtu = 1280

        # Lyon office
        [[peer]]
        name = "branch-1"
        key = "branch-1"
        allowed_ips = [
          "10.1.0.0/16",     # Lyon LAN
          "10.0.0.2",        # its tun address: a /32
        ]

        """

    @Test func tunAndAllowedIPsRoundTrip() throws {
        let config = try NodeConfig.parse(Self.routed, file: Self.file)
        #expect(config.tun == TunConfig(name: "byst0", addresses: Self.prefixes("10.0.0.1/24", "fd00::1/64"), mtu: 1280))
        #expect(config.peers[0].allowedIPs == Self.prefixes("10.1.0.0/16", "10.0.0.2/32"))
        // Defaults: name byst0, MTU 1500; an IPv4-only interface may go down to 576.
        let small = try NodeConfig.parse("[node]\nname = \"b\"\n[tun]\naddress = [\"10.0.0.2/24\"]\nmtu = 576\n", file: Self.file)
        #expect(small.tun == TunConfig(name: "byst0", addresses: Self.prefixes("10.0.0.2/24"), mtu: 576))
        #expect(try NodeConfig.parse("[node]\nname = \"b\"\n[tun]\nname = \"wan.tun_1-x\"\naddress = [\"fd00::2/64\"]\n",
                                     file: Self.file).tun == TunConfig(name: "wan.tun_1-x", addresses: Self.prefixes("fd00::2/64")))
        #expect(TunConfig(addresses: []).mtu == 1500)
        #expect(TunConfig.isValidInterfaceName("byst-hub-tunnl"))
        #expect(!TunConfig.isValidInterfaceName(""))
        #expect(!TunConfig.isValidInterfaceName("."))
        #expect(!TunConfig.isValidInterfaceName("é"))
        #expect(try NodeConfig.parse("[node]\nname = \"b\"\n", file: Self.file).tun == nil)
        // Offloads are on unless switched off; the value must be a boolean.
        #expect(small.tun?.offload == true)
        let off = try NodeConfig.parse("[node]\nname = \"b\"\n[tun]\naddress = [\"10.0.0.2/24\"]\noffload = false\n", file: Self.file)
        #expect(off.tun?.offload == false)
        #expect(throws: ConfigError.self) {
            try NodeConfig.parse("[node]\nname = \"b\"\n[tun]\naddress = [\"10.0.0.2/24\"]\noffload = \"no\"\n", file: Self.file)
        }
        // Likewise the data plane, with the key named in the error.
        #expect(small.tun?.dataPlane == true)
        let loopOnly = try NodeConfig.parse("[node]\nname = \"b\"\n[tun]\naddress = [\"10.0.0.2/24\"]\ndata_plane = false\n", file: Self.file)
        #expect(loopOnly.tun?.dataPlane == false)
        let wrongType = #expect(throws: ConfigError.self) {
            try NodeConfig.parse("[node]\nname = \"b\"\n[tun]\naddress = [\"10.0.0.2/24\"]\ndata_plane = 1\n", file: Self.file)
        }
        #expect(wrongType?.description.contains("data_plane") == true)

        // Written in network form by the editor, read back equal, removed byte for byte.
        let branch2 = PeerConfig(name: "branch-2", key: "branch-2", allowedIPs: Self.prefixes("10.2.0.0/16", "fd00:2::/64"))
        let added = try ConfigEditor.addingPeer(branch2, to: Self.routed, file: Self.file)
        #expect(added == Self.routed + "\n[[peer]]\nname = \"branch-2\"\nkey = \"branch-2\"\nallowed_ips = [\"10.2.0.0/16\", \"fd00:2::/64\"]\n")
        #expect(try NodeConfig.parse(added, file: Self.file).peers.last == branch2)
        #expect(try ConfigEditor.removingPeer(named: "branch-2", from: added, file: Self.file) == Self.routed)

        // A prefix already routed to another peer: refused, pointing at that peer's line.
        let clash = PeerConfig(name: "branch-3", key: "k", allowedIPs: Self.prefixes("10.3.0.0/16", "10.1.0.0/16"))
        #expect(throws: ConfigError(file: Self.file, section: "[[peer]] \"branch-3\"",
                                    reason: .alreadyRouted(prefix: "10.1.0.0/16", peer: "branch-1", firstLine: 12))) {
            try ConfigEditor.addingPeer(clash, to: Self.routed, file: Self.file)
        }
    }

    /// `byst peer add --allowed-ips`: prefixes in network form; bad ones refused in one line.
    @Test func peerAddWritesAllowedIPs() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/byst.toml"
            let original = Self.routed.replacingOccurrences(of: "name = \"hub\"\n", with: "name = \"hub\"\nkey_store = \"\(dir)/keys\"\n")
            try AtomicFile.write(Array(original.utf8), to: path, mode: 0o600)
            let added = try byst(["peer", "add", "branch-2", "--key", "branch-2", "--allowed-ips", "10.2.0.0/16, fd00:2::5/64", "-c", path])
            #expect(added.status == 0, "\(added.stderr)")
            #expect(try String(contentsOfFile: path, encoding: .utf8)
                == original + "\n[[peer]]\nname = \"branch-2\"\nkey = \"branch-2\"\nallowed_ips = [\"10.2.0.0/16\", \"fd00:2::/64\"]\n")
            let edited = try String(contentsOfFile: path, encoding: .utf8)
            let cases: [([String], String)] = [
                (["--allowed-ips", "10.3.0.0/33"],
                 "byst: error: --allowed-ips must be a comma-separated list of IP prefixes like 10.0.2.0/24,fd00:2::/64, got \"10.3.0.0/33\"\n"),
                (["--allowed-ips", "10.3.0.0/16,"],
                 "byst: error: --allowed-ips must be a comma-separated list of IP prefixes like 10.0.2.0/24,fd00:2::/64, got \"\"\n"),
                (["--allowed-ips", "::/0"],
                 "byst: error: --allowed-ips \"::/0\": a default route through the tunnel (prefix length 0) is not supported yet\n"),
                (["--allowed-ips", "10.3.0.0/16,10.1.2.3/16"],
                 "byst: error: \(path): [[peer]] \"branch-3\": allowed_ips \"10.1.0.0/16\" is already routed to peer \"branch-1\" (line 13)\n"),
            ]
            for (arguments, expected) in cases {
                let run = try byst(["peer", "add", "branch-3", "--key", "k"] + arguments + ["-c", path])
                #expect(run.status == 1, "\(arguments)")
                #expect(run.stderr == expected, "\(arguments)")
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == edited)
        }
    }

    /// Every file in deploy/examples/ is a valid config.
    @Test func deployExamplesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("deploy/examples").path
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".toml") }.sorted()
        #expect(names.contains("hub.toml") && names.contains("branch-1.toml"), "\(names)")
        for name in names {
            do throws(ConfigError) {
                let config = try NodeConfig.load(path: directory + "/" + name)
                #expect(config.tun != nil, "\(name)")
                #expect(config.peers.contains { !$0.allowedIPs.isEmpty }, "\(name)")
            } catch {
                Issue.record("\(error)")
            }
        }
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
