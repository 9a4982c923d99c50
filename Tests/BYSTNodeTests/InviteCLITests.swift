import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// `byst invite` on a hub and `byst join` on a branch, through the built binary (issue 25
/// point 4): the line carries key, names, endpoints, TUN address and routes; anything broken
/// is refused before a file is written.
@Suite struct InviteCLITests {
    static func hubConfig(_ dir: String) -> String {
        """
        # BYST hub
        [node]
        name = "hub"
        listen = ["0.0.0.0:7000"]
        key_store = "\(dir)/hub/keys"

        [tun]
        address = ["10.0.0.1/24", "fd00::1/64"]

        [[peer]]
        name = "branch-0"
        key = "branch-0"
        allowed_ips = ["10.0.0.9/32"]

        """
    }

    /// A hub directory with its config; the config's path.
    static func makeHub(_ dir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir + "/hub", withIntermediateDirectories: true)
        let path = dir + "/hub/hub.toml"
        try Data(hubConfig(dir).utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// `byst invite branch1 …` on a fresh hub; the line.
    static func invite(_ dir: String, _ extra: [String] = []) throws -> String {
        let run = try byst(["invite", "branch1", "--endpoint", "byst://192.0.2.10:7000", "-c", try makeHub(dir)] + extra)
        #expect(run.status == 0, "\(run.stderr)")
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func join(_ dir: String, stdin: String? = nil, _ extra: [String] = []) throws -> CLIRun {
        try byst(["join", "-c", dir + "/branch/branch1.toml", "--store", dir + "/branch/keys"] + extra, stdin: stdin)
    }

    static func keyID(_ name: String, store: String) throws -> Substring? {
        try byst(["key", "show", name, "--store", store]).stdout.split(separator: "\n").first { $0.hasPrefix("key id:") }
    }

    @Test func inviteThenJoinGivesTheBranchItsConfigAndTheHubsKey() throws {
        try withTemporaryDirectory { dir in
            let hubPath = try Self.makeHub(dir)
            let invited = try byst(["invite", "branch1", "--endpoint", "byst://192.0.2.10:7000", "--endpoint", "https://hub.example.net/byst",
                                    "--address", "10.0.0.2", "--address", "fd00::2/64", "--allowed-ips", "10.1.0.0/24",
                                    "--routes", "10.2.0.0/24,fd02::/64", "--links", "2", "-c", hubPath])
            #expect(invited.status == 0, "\(invited.stderr)")
            let lines = invited.stdout.split(separator: "\n")
            #expect(lines.count == 1)
            let line = try #require(lines.first.map(String.init))
            #expect(line.hasPrefix("bystinv1_"))
            #expect(invited.stderr.contains("added peer 'branch1' to \(hubPath) with a new key 'branch1'"))
            #expect(invited.stderr.contains("byst reload -c \(hubPath)"))

            // The hub: the peer, deny by default, its TUN addresses routed to it; the file loads.
            let hub = try NodeConfig.load(path: hubPath)
            let peer = try #require(hub.peer(named: "branch1"))
            #expect(peer.key == "branch1")
            #expect(peer.endpoint == nil)
            #expect(peer.allowTargets.isEmpty)
            #expect(peer.ports.isEmpty)
            #expect(peer.allowedIPs.map(\.description) == ["10.0.0.2/32", "fd00::2/128", "10.1.0.0/24"])
            #expect(try fileMode(hubPath) == 0o600)
            #expect(try String(contentsOfFile: hubPath, encoding: .utf8).hasPrefix(Self.hubConfig(dir)))

            let joined = try Self.join(dir, stdin: line + "\n")
            #expect(joined.status == 0, "\(joined.stderr)")
            let branchPath = dir + "/branch/branch1.toml"
            #expect(joined.stdout.contains("byst up -c \(branchPath)"))
            #expect(!joined.stdout.contains("systemctl"))   // only for /etc/byst/NAME.toml
            #expect(try fileMode(branchPath) == 0o600)
            #expect(try fileMode(dir + "/branch/keys") == 0o600)
            #expect(try fileMode(dir + "/branch") == 0o700)

            let branch = try NodeConfig.load(path: branchPath)
            #expect(branch.name == "branch1")
            #expect(branch.keyStore == dir + "/branch/keys")
            #expect(branch.tun?.addresses.map(\.description) == ["10.0.0.2/24", "fd00::2/64"])
            let toHub = try #require(branch.peer(named: "hub"))
            #expect(toHub.key == "hub")
            #expect(toHub.endpoint?.description == "byst://192.0.2.10:7000")
            #expect(toHub.links == 2)
            #expect(toHub.allowTargets.isEmpty)
            #expect(toHub.allowedIPs.map(\.description) == ["10.0.0.0/24", "fd00::/64", "10.2.0.0/24", "fd02::/64"])
            #expect(try String(contentsOfFile: branchPath, encoding: .utf8).contains("#   https://hub.example.net:443/byst"))
            #expect(try Self.keyID("branch1", store: dir + "/hub/keys") != nil)
            #expect(try Self.keyID("branch1", store: dir + "/hub/keys") == Self.keyID("hub", store: dir + "/branch/keys"))
        }
    }

    @Test func aBrokenLineIsRefusedAndNothingIsWritten() throws {
        try withTemporaryDirectory { dir in
            let line = try Self.invite(dir)
            var flipped = Array(line)
            flipped[30] = flipped[30] == "A" ? "B" : "A"
            let key = try byst(["key", "export", "branch1", "--store", dir + "/hub/keys"]).stdout
            let cases: [(String, String)] = [
                (String(flipped), "byst: error: BYST invitation checksum does not match (mistyped or truncated copy?)\n"),
                (String(line.dropLast(9)), "byst: error: BYST invitation checksum does not match (mistyped or truncated copy?)\n"),
                (String(line.dropLast(10)), "byst: error: BYST invitation checksum does not match (mistyped or truncated copy?)\n"),
                (line + "!", "byst: error: not a BYST invitation: bad characters after bystinv1_\n"),
                ("hello", "byst: error: not a BYST invitation: it must start with bystinv1_\n"),
                (key, "byst: error: this is a key (bystk1_…), not an invitation: store it with byst key import NAME\n"),
                ("", "byst: error: no invitation given: pipe the bystinv1_… line of byst invite on standard input, or give --file FILE\n"),
            ]
            for (input, expected) in cases {
                let run = try Self.join(dir, stdin: input + "\n")
                #expect(run.status == 1, "\(input)")
                #expect(run.stderr == expected, "\(input)")
                #expect(run.stdout.isEmpty)
                #expect(!FileManager.default.fileExists(atPath: dir + "/branch"), "\(input)")
            }
        }
    }

    @Test func aWrappedPasteIsJoined() throws {
        try withTemporaryDirectory { dir in
            let line = try Self.invite(dir)
            var wrapped = "", rest = Substring(line)
            while !rest.isEmpty {
                wrapped += "  " + rest.prefix(40) + " \n"
                rest = rest.dropFirst(40)
            }
            let run = try Self.join(dir, stdin: wrapped + "trailing text is not read\n")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(try Self.keyID("branch1", store: dir + "/hub/keys") == Self.keyID("hub", store: dir + "/branch/keys"))
        }
    }

    @Test func aFileOthersCanReadIsRefused() throws {
        try withTemporaryDirectory { dir in
            let line = try Self.invite(dir)
            let file = dir + "/invitation.txt"
            try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: file))
            chmod(file, 0o644)
            let refused = try Self.join(dir, ["--file", file])
            #expect(refused.status == 1)
            #expect(refused.stderr == "byst: error: invitation file: \(file) is readable or writable by group or others (mode 644); "
                + "run: chmod 600 \(file) (it holds a key)\n")
            #expect(!FileManager.default.fileExists(atPath: dir + "/branch"))
            chmod(file, 0o600)
            let joined = try Self.join(dir, ["--file", file])
            #expect(joined.status == 0, "\(joined.stderr)")
            #expect(try NodeConfig.load(path: dir + "/branch/branch1.toml").name == "branch1")
        }
    }

    @Test func inviteWritesTheLineToANewPrivateFile() throws {
        try withTemporaryDirectory { dir in
            let file = dir + "/branch1.inv"
            let run = try byst(["invite", "branch1", "--endpoint", "byst://192.0.2.10:7000", "-o", file, "-c", try Self.makeHub(dir)])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.isEmpty)
            #expect(run.stderr.contains("byst join --file \(file)"))
            #expect(try fileMode(file) == 0o600)
            #expect(try Self.join(dir, ["--file", file]).status == 0)
            // Not twice into the same file (and then neither key nor peer is added).
            let again = try byst(["invite", "branch2", "--endpoint", "byst://192.0.2.10:7000", "-o", file, "-c", dir + "/hub/hub.toml"])
            #expect(again.status == 1)
            #expect(again.stderr == "byst: error: \(file) exists: refusing to overwrite it with an invitation\n")
            #expect(try NodeConfig.load(path: dir + "/hub/hub.toml").peer(named: "branch2") == nil)
        }
    }

    @Test func anExistingConfigIsKeptUnlessForced() throws {
        try withTemporaryDirectory { dir in
            let line = try Self.invite(dir)
            let path = dir + "/branch/branch1.toml"
            try FileManager.default.createDirectory(atPath: dir + "/branch", withIntermediateDirectories: true)
            try Data("# mine\n".utf8).write(to: URL(fileURLWithPath: path))
            let refused = try Self.join(dir, stdin: line + "\n")
            #expect(refused.status == 1)
            #expect(refused.stderr == "byst: error: \(path) exists: refusing to overwrite it (--force replaces it)\n")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "# mine\n")
            #expect(!FileManager.default.fileExists(atPath: dir + "/branch/keys"))

            let forced = try Self.join(dir, stdin: line + "\n", ["--force"])
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try NodeConfig.load(path: path).peer(named: "hub") != nil)
            // A second join finds the key as well as the file; --force replaces both.
            #expect(try Self.join(dir, stdin: line + "\n").status == 1)
            #expect(try Self.join(dir, stdin: line + "\n", ["--force"]).status == 0)
        }
    }

    @Test func inviteRefusalsLeaveTheHubAlone() throws {
        try withTemporaryDirectory { dir in
            let hubPath = try Self.makeHub(dir)
            let original = try String(contentsOfFile: hubPath, encoding: .utf8)
            let noTun = dir + "/hub/plain.toml"
            try Data("[node]\nname = \"hub\"\nkey_store = \"\(dir)/hub/keys\"\n".utf8).write(to: URL(fileURLWithPath: noTun))
            let endpoint = ["--endpoint", "byst://192.0.2.10:7000"]
            let cases: [([String], String)] = [
                (["invite", "branch-0", "-c", hubPath] + endpoint,
                 "a peer named 'branch-0' already exists in \(hubPath) (remove it first with: byst peer rm branch-0)"),
                (["invite", "hub", "-c", hubPath] + endpoint, "the branch cannot have the hub's own name \"hub\""),
                (["invite", "b", "-c", hubPath],
                 "give the address the branch dials: --endpoint byst://HOST:PORT (or http(s)://…), one of this hub's listeners"),
                (["invite", "b", "-c", hubPath, "--endpoint", "port:hq"],
                 "--endpoint \"port:hq\": invitations carry byst://, http:// and https:// endpoints, not port:NAME (the branch would need a registry)"),
                (["invite", "b", "-c", noTun, "--address", "10.0.0.2/24"] + endpoint,
                 "the hub has no [tun]: a TUN address for the branch would reach nothing (add [tun] to the hub's config, or leave out --address)"),
                (["invite", "b", "-c", hubPath, "--address", "10.9.0.2"] + endpoint,
                 "--address 10.9.0.2: not in the hub's tunnel subnets (10.0.0.0/24, fd00::/64); give its length, like 10.9.0.2/24"),
                (["invite", "b", "-c", hubPath, "--address", "10.0.0.1"] + endpoint, "--address 10.0.0.1 is the hub's own tunnel address"),
                (["invite", "b", "-c", hubPath, "--address", "10.0.0.9"] + endpoint,
                 "\(hubPath): [[peer]] \"b\": allowed_ips \"10.0.0.9/32\" is already routed to peer \"branch-0\" (line 13)"),
                (["invite", "b", "-c", hubPath, "--routes", "10.2.0.0/24"] + endpoint,
                 "--routes needs --address: without a TUN address the branch routes nothing"),
                (["invite", "bad/name", "-c", hubPath] + endpoint,
                 "\(hubPath): [[peer]] #2: name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got \"bad/name\""),
            ]
            for (arguments, expected) in cases {
                let run = try byst(arguments)
                #expect(run.status == 1, "\(arguments)")
                #expect(run.stderr == "byst: error: \(expected)\n", "\(arguments)")
                #expect(run.stdout.isEmpty, "\(arguments)")
            }
            #expect(try String(contentsOfFile: hubPath, encoding: .utf8) == original)
            #expect(!FileManager.default.fileExists(atPath: dir + "/hub/keys"))
            // A key of the branch's name already in the store: refused, not reused.
            #expect(try byst(["key", "gen", "b", "--store", dir + "/hub/keys"]).status == 0)
            let taken = try byst(["invite", "b", "-c", hubPath] + endpoint)
            #expect(taken.status == 1)
            #expect(taken.stderr.hasPrefix("byst: error: a key named 'b' already exists in \(dir)/hub/keys; an invitation brings a fresh key"))
            #expect(try String(contentsOfFile: hubPath, encoding: .utf8) == original)
            // Targets only when asked for.
            let allowed = try byst(["invite", "c", "-c", hubPath, "--allow-targets", "127.0.0.1:5432"] + endpoint)
            #expect(allowed.status == 0, "\(allowed.stderr)")
            #expect(try NodeConfig.load(path: hubPath).peer(named: "c")?.allowTargets.map(\.description) == ["127.0.0.1:5432"])
        }
    }

    /// The line's codec, without the binary.
    @Test func theLineCarriesEveryFieldAndRefusesWhatAWriterWouldNot() throws {
        let key = try PreSharedKey.generate()
        let endpoints = try [Endpoint.parse("byst://[2001:db8::1]:7000").get(), Endpoint.parse("http://hub:8080/byst").get()]
        let invitation = Invitation(key: key, hubName: "hq", branchName: "lyon", endpoints: endpoints, links: 8,
                                    addresses: [try #require(IPPrefix("fd00::2/64"))], routes: [try #require(IPPrefix("fd00::/64"))])
        let line = invitation.encoded()
        let decoded = try Invitation.decode(" \(line)\r\n")
        #expect(decoded.key.id == key.id)
        #expect(decoded.hubName == "hq" && decoded.branchName == "lyon" && decoded.links == 8)
        #expect(decoded.endpoints == endpoints)
        #expect(decoded.addresses == invitation.addresses && decoded.routes == invitation.routes)

        // Payloads with a valid checksum that a writer would not produce.
        func signed(_ payload: [UInt8]) -> String {
            ChecksummedString.encode(payload, prefix: Invitation.prefix, label: Invitation.checksumLabel)
        }
        func str(_ text: String) -> [UInt8] { [0, UInt8(text.utf8.count)] + Array(text.utf8) }
        let secret = key.secret.revealedBytes
        let good = secret + str("hq") + str("lyon") + [4, 1] + str("byst://h:1") + [0, 0]
        #expect(try Invitation.decode(signed(good)).endpoints.count == 1)
        let cases: [([UInt8], Invitation.Problem)] = [
            (good + [0], .malformed("bytes after its last field")),
            (Array(good.dropLast()), .malformed("it ends early")),
            (Array(secret.prefix(20)), .malformed("shorter than a key")),
            ([UInt8](repeating: 0, count: 32) + good.dropFirst(32), .weakKey),
            (secret + str("hq") + str("hq") + [4, 1] + str("byst://h:1") + [0, 0], .malformed("the hub and the branch are both named \"hq\"")),
            (secret + str("hq") + str("lyon") + [4, 0, 0, 0], .malformed("no endpoint to dial")),
            (secret + str("hq") + str("lyon") + [0, 1] + str("byst://h:1") + [0, 0], .malformed("links 0 (1…64)")),
            (secret + str("hq") + str("lyon") + [4, 1] + str("port:hq") + [0, 0],
             .malformed("endpoint \"port:hq\": port:NAME endpoints need a registry, which invitations do not carry")),
            (secret + str("hq") + str("lyon") + [4, 1] + str("h:1") + [0, 0], .malformed("endpoint \"h:1\"")),
            (secret + str("hq") + str("lyon") + [4, 1] + str("byst://h:1") + [0, 1] + str("10.0.0.0/0"), .malformed("route \"10.0.0.0/0\"")),
            (secret + str("hq") + str("lyon") + [4, 1] + str("byst://h:1") + [0, 1] + str("10.0.0.0/8"),
             .malformed("routes without a TUN address")),
        ]
        for (payload, problem) in cases {
            #expect(throws: problem) { try Invitation.decode(signed(payload)) }
        }
    }
}
