import BYSTProto
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import BYSTNode

/// `[ha] address`, `on_active`, `on_standby`, `notify_timeout`: parsing, which addresses a
/// gateway holds for which role, and the notify commands' order, environment and timeout.
@Suite struct HALANSideTests {
    static let file = "/etc/byst/hub.toml"
    static let gateway = """
        [node]
        name = "hub-a"
        registry = "peer:registry"
        [ha]
        port = "hq"
        advertise = ["byst://198.51.100.1:7000"]

        """
    static let registryPeer = "[[peer]]\nname = \"registry\"\nkey = \"r\"\nendpoint = \"byst://10.0.0.9:7100\"\n"

    @Test func readsAddressesAndNotifyCommands() throws {
        let config = try NodeConfig.parse(Self.gateway + """
            address = ["10.84.0.1/24 dev eth1", "fd00:84::1/64 dev eth1 port hq"]
            on_active = ["/usr/local/bin/notify", "active"]
            on_standby = ["/usr/local/bin/notify"]
            notify_timeout = "2s"

            """ + Self.registryPeer, file: Self.file)
        let ha = try #require(config.ha)
        #expect(ha.addresses == [
            HAAddress(prefix: try #require(IPPrefix("10.84.0.1/24")), interface: "eth1"),
            HAAddress(prefix: try #require(IPPrefix("fd00:84::1/64")), interface: "eth1", port: "hq"),
        ])
        #expect(ha.addresses.map(\.description) == ["10.84.0.1/24 dev eth1", "fd00:84::1/64 dev eth1 port hq"])
        #expect(ha.onActive == ["/usr/local/bin/notify", "active"])
        #expect(ha.onStandby == ["/usr/local/bin/notify"])
        #expect(ha.notifyTimeout == .seconds(2))
        let plain = try NodeConfig.parse(Self.gateway + Self.registryPeer, file: Self.file)
        #expect(plain.ha?.addresses == [] && plain.ha?.onActive == nil && plain.ha?.notifyTimeout == .seconds(10))
    }

    @Test func badEntriesGiveOnePreciseLine() {
        let f = Self.file
        let cases: [(String, String)] = [
            ("address = [\"10.84.0.1 dev eth1\"]\n", #"\#(f):7: [ha]: address must be an array of "ADDRESS/LENGTH dev INTERFACE" strings"#),
            ("address = [\"10.84.0.1/24 eth1\"]\n", #"\#(f):7: [ha]: address must be an array of "ADDRESS/LENGTH dev INTERFACE""#),
            ("address = [\"10.84.0.1/33 dev eth1\"]\n", #"\#(f):7: [ha]: address must be an array of"#),
            ("address = [\"10.84.0.1/24 dev this-name-is-too-long\"]\n", #"\#(f):7: [ha]: address must be an array of"#),
            ("address = [\"10.84.0.1/24 dev eth1 port\"]\n", #"\#(f):7: [ha]: address must be an array of"#),
            ("address = [\"10.84.0.1/24 dev eth1 port hq-2\"]\n",
             #"\#(f):7: [ha]: address must be a port of this node's [ha] ("hq"), got "10.84.0.1/24 dev eth1 port hq-2""#),
            ("address = [\"10.84.0.1/24 dev eth1\", \"10.84.0.1/16 dev eth2\"]\n",
             #"\#(f):7: [ha]: duplicate [ha] address "10.84.0.1/16 dev eth2""#),
            ("on_active = []\n", #"\#(f):7: [ha]: on_active must be a non-empty array of strings: a program's absolute path and its arguments (no shell), got an empty array"#),
            ("on_standby = [\"notify.sh\"]\n", #"\#(f):7: [ha]: on_standby must be a non-empty array of strings: a program's absolute path and its arguments (no shell), got program "notify.sh""#),
            ("on_active = \"/bin/true\"\n", #"\#(f):7: [ha]: on_active must be a non-empty array"#),
            ("notify_timeout = \"10ms\"\n", #"\#(f):7: [ha]: notify_timeout must be 100ms…10m, got 10ms"#),
        ]
        for (line, expected) in cases {
            let text = Self.gateway + line + Self.registryPeer
            let message = NodeConfig.parseError(text, file: f)
            #expect(message?.hasPrefix(expected) == true, "\(message ?? "no error") for\n\(text)")
        }
    }

    @Test func aPortHoldsItsAddressesOnlyWhileActive() throws {
        let a = HAAddress(prefix: try #require(IPPrefix("10.84.0.1/24")), interface: "eth1")
        let b = HAAddress(prefix: try #require(IPPrefix("10.85.0.1/24")), interface: "eth2", port: "hq-2")
        var plan = VirtualAddressPlan(addresses: [a, b], defaultPort: "hq")
        let aOfHQ = HAAddress(prefix: a.prefix, interface: "eth1", port: "hq")
        #expect(plan.held.isEmpty)
        #expect(plan.standDown("hq").isEmpty, "nothing to remove before it was active")
        #expect(plan.activate("hq") == [aOfHQ])
        #expect(plan.activate("hq").isEmpty, "already held: not added twice")
        #expect(plan.held == [aOfHQ])
        #expect(plan.activate("hq-2") == [b])
        #expect(plan.held == [aOfHQ, b])
        #expect(plan.standDown("hq") == [aOfHQ])
        #expect(plan.held == [b], "the other port keeps its address")
        #expect(plan.releaseAll() == [b])
        #expect(plan.held.isEmpty && plan.releaseAll().isEmpty)
        #expect(plan.activate("elsewhere").isEmpty)
    }

    /// Real processes: the commands of one port run one after the other in transition order
    /// with the BYST_HA_* environment; one over the timeout is killed, the next still runs.
    @Test(.timeLimit(.minutes(1))) func notifyCommandsRunInOrderAndAreKilledAtTheTimeout() async throws {
        let directory = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = directory + "/notify.out"
        // Each call appends "start ROLE", sleeps (the standby one far beyond the timeout when
        // its reason says so), and appends "end ROLE".
        let script = "echo \"start $BYST_HA_ROLE $BYST_HA_PORT $BYST_HA_REASON\" >>\(out); "
            + "case \"$BYST_HA_REASON\" in hang) sleep 30 ;; *) sleep 0.2 ;; esac; echo \"end $BYST_HA_ROLE\" >>\(out)"
        var config = HAConfig(ports: ["hq"], advertise: [.byst(HostPort(host: "10.0.0.1", port: 7000))])
        config.onActive = ["/bin/sh", "-c", script]
        config.onStandby = ["/bin/sh", "-c", script]
        config.notifyTimeout = .milliseconds(500)
        let capture = LogCapture()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let notifier = try await Self.notifier(config, on: group.next(), capture: capture,
                                               calls: [(.active, "registered"), (.standby, "hang"), (.active, "again")])
        for _ in 0..<100 where capture.lines.value.filter({ $0.contains("on_active /bin/sh exited with status 0") }).count < 2 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(200))
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines == ["start active hq registered", "end active", "start standby hq hang", "start active hq again", "end active"])
        #expect(capture.contains("on_standby /bin/sh still running after notify_timeout 500ms: killing it"))
        #expect(capture.contains("on_standby /bin/sh killed by signal 9 after"))
        #expect(capture.lines.value.filter { $0.contains("on_active /bin/sh exited with status 0") }.count == 2)
        withExtendedLifetime(notifier) {}
        try await group.shutdownGracefully()
    }

    @Test func aCommandThatCannotStartIsLoggedAndTheNextRuns() async throws {
        var config = HAConfig(ports: ["hq"], advertise: [.byst(HostPort(host: "10.0.0.1", port: 7000))])
        config.onActive = ["/nonexistent/notify"]
        config.onStandby = ["/bin/sh", "-c", "exit 3"]
        let capture = LogCapture()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let notifier = try await Self.notifier(config, on: group.next(), capture: capture, calls: [(.active, "x"), (.standby, "y")])
        for _ in 0..<100 where !capture.contains("on_standby /bin/sh exited with status 3") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(capture.contains("on_active /nonexistent/notify could not start: No such file or directory"))
        #expect(capture.contains("warning") && capture.contains("on_standby /bin/sh exited with status 3"))
        withExtendedLifetime(notifier) {}
        try await group.shutdownGracefully()
    }

    /// A notifier made on `loop` and handed `calls` (role, reason) for port "hq", in order.
    /// The caller holds it (its polls hold it only weakly, as the node holds it).
    private static func notifier(_ config: HAConfig, on loop: EventLoop, capture: LogCapture,
                                 calls: [(GatewayRole.State, String)]) async throws -> NIOLoopBound<HANotifier> {
        try await loop.submit {
            let notifier = HANotifier(config: config, eventLoop: loop, logger: capture.logger("test"))
            for (role, reason) in calls { notifier.notify(port: "hq", role: role, reason: reason) }
            return NIOLoopBound(notifier, eventLoop: loop)
        }.get()
    }
}
