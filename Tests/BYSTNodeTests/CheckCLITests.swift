import Foundation
import Glibc
import Testing
@testable import BYSTNode
import BYSTProto
import Tun

/// `byst check` and the checks `byst up` runs before it creates anything (issue 25).
@Suite(.serialized) struct CheckCLITests {
    /// A config in `dir`, with a key store holding `hub`'s key; `extra` goes after [node].
    func writeConfig(_ dir: String, node: String = "", extra: String = "", keyStore: String? = nil) throws -> String {
        let store = keyStore ?? dir + "/keys"
        if keyStore == nil { #expect(try byst(["key", "gen", "hub", "--store", store]).status == 0) }
        let path = dir + "/node.toml"
        try """
            [node]
            name = "branch"
            control_socket = "\(dir)/run/branch.sock"
            key_store = "\(store)"
            \(node)

            [[peer]]
            name = "hub"
            key = "hub"
            endpoint = "byst://127.0.0.1:9"
            allowed_ips = ["10.250.0.0/24"]
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A TCP listener on 127.0.0.1 (some free port), held open until `close`.
    func listener() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    static var canCreateTun: Bool { geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 }

    static func uniqueTunName() -> String { "bystchk\(UInt16.random(in: 0...UInt16.max))" }

    @Test func checkPrintsWhatWouldRunAndExitsZero() throws {
        try withTemporaryDirectory { dir in
            let free = try listener(), other = try listener()
            close(free.fd)  // ports that were free a moment ago
            close(other.fd)
            let path = try writeConfig(dir, node: "listen = [\"127.0.0.1:\(free.port)\"]", extra: """

                [[forward]]
                listen = "127.0.0.1:\(other.port)"
                peer = "hub"
                target = "10.250.0.5:80"
                """)
            let run = try byst(["check", "-c", path])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains("node \"branch\""))
            #expect(run.stdout.contains("listen:      127.0.0.1:\(free.port)"))
            #expect(run.stdout.contains("hub key hub: byst://127.0.0.1:9 ×4 links; allowed_ips 10.250.0.0/24"))
            #expect(run.stdout.contains("→ hub → 10.250.0.5:80"))
            #expect(run.stdout.contains("byst up would start"))
            // Nothing lasting: the control socket's directory was tried and removed again.
            #expect(!FileManager.default.fileExists(atPath: dir + "/run"))
        }
    }

    @Test func listenAddressInUseIsFoundWithItsLineBeforeTheTunIsCreated() throws {
        try withTemporaryDirectory { dir in
            let busy = try listener()
            defer { close(busy.fd) }
            let tunName = Self.uniqueTunName()
            let tun = Self.canCreateTun ? "\n[tun]\nname = \"\(tunName)\"\naddress = [\"10.250.9.1/24\"]\n" : ""
            let path = try writeConfig(dir, node: "listen = [\"127.0.0.1:\(busy.port)\"]", extra: tun)
            // Line 5: [node], name, control_socket, key_store, listen.
            let check = try byst(["check", "--config", path])
            #expect(check.status == 1)
            #expect(check.stdout.contains("\(path):5: [node] listen 127.0.0.1:\(busy.port): cannot bind: Address already in use"), "\(check.stdout)")
            #expect(check.stdout.contains("byst up would refuse to start"))
            let up = try byst(["up", "-c", path])
            #expect(up.status == 1)
            #expect(up.stderr.contains("byst: error: \(path):5: [node] listen 127.0.0.1:\(busy.port): cannot bind"), "\(up.stderr)")
            if Self.canCreateTun { #expect(if_nametoindex(tunName) == 0, "byst up created the TUN before finding the bind conflict") }
        }
    }

    @Test func aForwardOnANodeListenAddressIsAConflict() throws {
        try withTemporaryDirectory { dir in
            let free = try listener()
            close(free.fd)
            let path = try writeConfig(dir, node: "listen = [\"127.0.0.1:\(free.port)\"]", extra: """

                [[forward]]
                listen = "127.0.0.1:\(free.port)"
                peer = "hub"
                target = "10.250.0.5:80"
                """)
            let check = try byst(["check", "-c", path])
            #expect(check.status == 1)
            // The forward's listen is on line 14.
            #expect(check.stdout.contains("\(path):14: [[forward]] #1 listen 127.0.0.1:\(free.port): cannot bind: Address already in use ([node] listen names it too)"), "\(check.stdout)")
        }
    }

    @Test func missingKeyStoreSaysHowToCreateKeys() throws {
        try withTemporaryDirectory { dir in
            let path = try writeConfig(dir, keyStore: dir + "/no-such-keys")
            for run in [try byst(["up", "-c", path]), try byst(["check", "-c", path])] {
                let text = run.stdout + run.stderr
                #expect(run.status == 1)
                #expect(text.contains("the key store \(dir)/no-such-keys does not exist"), "\(text)")
                #expect(text.contains("byst key gen hub --store \(dir)/no-such-keys"))
                #expect(text.contains("byst key import hub --store \(dir)/no-such-keys"))
                #expect(!text.contains("is not in the key store"))
            }
            let show = try byst(["key", "show", "hub", "--store", dir + "/no-such-keys"])
            #expect(show.stderr.contains("does not exist"), "\(show.stderr)")
        }
    }

    @Test func missingKeyMessageFromTheNode() {
        let gone = Node.StartError.missingKey(peer: "hub", key: "hub", store: "/etc/byst/keys", storeExists: false).description
        #expect(gone == "peer 'hub': the key store /etc/byst/keys does not exist (key 'hub' needed): create a key with `byst key gen hub` (then `byst key export hub` for the peer), or store the peer's with `byst key import hub`")
        let absent = Node.StartError.missingKey(peer: "hub", key: "hub", store: "/etc/byst/keys", storeExists: true).description
        #expect(absent.contains("is not in the key store /etc/byst/keys: create it with `byst key gen hub` or `byst key import hub`"))
    }

    @Test func controlSocketFailureNamesTheSetting() throws {
        let failure = ControlSocketCheck.Failure(path: "/run/byst/branch.sock", detail: "mkdir /run/byst: Permission denied", isDefault: true)
        #expect(failure.description == "control socket /run/byst/branch.sock: mkdir /run/byst: Permission denied: set control_socket in [node] to a path in a directory you can write (the default, /run/byst, needs root, or the systemd unit byst@.service, which creates it)")
        try withTemporaryDirectory { dir in
            // A regular file where the socket's directory should be: no user can create it.
            #expect(FileManager.default.createFile(atPath: dir + "/run", contents: Data()))
            let path = try writeConfig(dir)
            let up = try byst(["up", "-c", path])
            #expect(up.status == 1)
            #expect(up.stderr.contains("\(path):3: control socket \(dir)/run/branch.sock: \(dir)/run is not a directory: set control_socket in [node]"), "\(up.stderr)")
        }
    }

    /// As an unprivileged user, the default control socket: the message says what to change.
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func defaultControlSocketAsNonRootNamesTheSetting() throws {
        try withTemporaryDirectory { dir in
            chmod(dir, 0o755)
            let path = dir + "/node.toml"
            try "[node]\nname = \"nonroot\"\nkey_store = \"\(dir)/keys\"\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o644)
            let run = try runAs(uid: 65534, ["up", "-c", path])
            #expect(run.status == 1)
            #expect(run.stderr.contains("\(path):1: control socket /run/byst/nonroot.sock: "), "\(run.stderr)")
            #expect(run.stderr.contains("set control_socket in [node]"))
            #expect(run.stderr.contains("/run/byst, needs root, or the systemd unit byst@.service"))
        }
    }

    @Test(.enabled(if: CheckCLITests.canCreateTun)) func tunNameHeldByAnotherNodeSaysChangeTheName() throws {
        let name = Self.uniqueTunName()
        let other = try TunDevice.open(name: name)  // as another node holds its TUN
        defer { other.close() }
        #expect(InterfaceProbe.state(of: name) == .tunInUse)
        try withTemporaryDirectory { dir in
            let path = try writeConfig(dir, extra: "\n[tun]\nname = \"\(name)\"\naddress = [\"10.250.9.1/24\"]\n")
            let check = try byst(["check", "-c", path])
            #expect(check.status == 1)
            // [tun] is on line 13, its name on 14.
            #expect(check.stdout.contains("\(path):14: [tun] name \"\(name)\": a TUN interface of that name is already up, held by another process (another byst node?): give this node a different [tun] name"), "\(check.stdout)")
            let up = try byst(["up", "-c", path])
            #expect(up.status == 1)
            #expect(up.stderr.contains("\(path):14: [tun] name"), "\(up.stderr)")
        }
        #expect(TunDevice.Failure.nameInUse("byst0").description.contains("give this node a different [tun] name"))
    }

    @Test func allowedIPsCollidingWithAnExistingRouteAreReported() throws {
        let routes = try RouteTable.read()
        let candidates = routes.filter {
            $0.table == RouteTable.mainTable && !$0.destination.isIPv6 && $0.destination.length > 0 && $0.priority == 0
        }
        guard let existing = candidates.first else { return }  // no IPv4 route to collide with here
        let prefix = existing.destination.network.description
        try withTemporaryDirectory { dir in
            let path = try writeConfig(dir, extra: "\n[[peer]]\nname = \"lan\"\nkey = \"lan\"\nallowed_ips = [\"\(prefix)\"]\n\n[tun]\nname = \"\(Self.uniqueTunName())\"\naddress = [\"10.250.9.1/24\"]\n")
            #expect(try byst(["key", "gen", "lan", "--store", dir + "/keys"]).status == 0)
            let check = try byst(["check", "-c", path])
            #expect(check.status == 1)
            #expect(check.stdout.contains("[[peer]] \"lan\": allowed_ips \"\(prefix)\" collides with the existing route \(prefix)"), "\(check.stdout)")
            #expect(check.stdout.contains("already exists"))
        }
    }

    @Test func conflictsFollowTheKernelsExclusiveCheck() throws {
        let lan = try #require(IPPrefix("192.168.7.0/24"))
        let routes = [KernelRoute(destination: lan, interface: 2, table: 254, priority: 0),
                      KernelRoute(destination: try #require(IPPrefix("192.168.8.0/24")), interface: 2, table: 254, priority: 100),
                      KernelRoute(destination: try #require(IPPrefix("192.168.9.0/24")), interface: 2, table: 255, priority: 0)]
        #expect(routes.map(RouteTable.refusesAdding(over:)) == [true, false, false])  // another metric; not main
        let text = """
            [node]
            name = "hub"
            [tun]
            name = "bysttest"
            address = ["10.250.9.1/24"]
            [[peer]]
            name = "a"
            key = "a"
            allowed_ips = ["192.168.7.9/24", "192.168.8.0/24", "192.168.9.0/24"]
            [[peer]]
            name = "b"
            key = "b"
            allowed_ips = ["192.168.7.0/25"]
            """
        let config = try NodeConfig.parse(text, file: "f.toml")
        let tun = try #require(config.tun)
        let problems = Preflight.routeConflicts(config, tun, routes: routes, ConfigLines(file: "f.toml", text: text))
        #expect(problems.map(\.message) == [
            "[[peer]] \"a\": allowed_ips \"192.168.7.0/24\" collides with the existing route \(routes[0]) (byst up would fail with `add route 192.168.7.0/24 via bysttest: already exists`): remove that route or narrow allowed_ips"
        ])
        #expect(problems.map(\.location) == ["f.toml:9"])
    }

    @Test func configLinesFindAValueInAMultiLineArray() {
        let text = "[node]\nname = \"a\"\nlisten = [\n  \"127.0.0.1:1\",\n  \"127.0.0.1:2\",\n]\n"
        let lines = ConfigLines(file: "f.toml", text: text)
        #expect(lines.location("listen", table: "node", value: "127.0.0.1:2") == "f.toml:5")
        #expect(lines.location("listen", table: "node") == "f.toml:3")
        #expect(lines.location("control_socket", table: "node") == "f.toml:1")
        #expect(lines.location("name", table: "tun") == "f.toml")
    }

    @Test func interfaceStates() {
        #expect(InterfaceProbe.classify(flags: 0x1001, attached: false) == .tunInUse)  // not persistent: someone holds it
        #expect(InterfaceProbe.classify(flags: 0x0801, attached: false) == .idlePersistentTun)
        #expect(InterfaceProbe.classify(flags: 0x0801, attached: true) == .tunInUse)
        #expect(InterfaceProbe.classify(flags: 0x0802, attached: false) == .otherKind)  // a TAP
        #expect(InterfaceProbe.state(of: "lo") == .otherKind)
    }
}

/// `byst arguments` as user `uid` (setpriv), stdin empty.
func runAs(uid: Int, _ arguments: [String]) throws -> CLIRun {
    try byst(["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", try bystBinary()] + arguments, executable: "/usr/bin/setpriv")
}
