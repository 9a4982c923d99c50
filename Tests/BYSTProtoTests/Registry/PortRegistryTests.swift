import Testing
@testable import BYSTProto

/// The registry's rules with an injected clock (docs/ARCHITECTURE.md §5).
@Suite struct PortRegistryTests {
    let a = RegistryClientID("hub-a")
    let b = RegistryClientID("hub-b")
    let branch = RegistryClientID("branch")
    let second: Nanoseconds = 1_000_000_000

    @Test func leaseExpiryReleasesPortsAndNotifiesWatchers() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(5), grace: .zero), now: 0)
        #expect(registry.register("hq", info: "byst://10.0.0.1:7000", by: a, now: 0) == .registered)
        #expect(registry.register("hq", info: "byst://10.0.0.2:7000", by: b, now: 0)
            == .taken(by: .init(client: a, info: "byst://10.0.0.1:7000")))
        registry.watch("hq", by: b, now: 0)
        registry.watch("hq", by: branch, now: 0)
        // a keeps renewing for 8 s: nothing happens; b and branch renew too.
        for t in stride(from: 1, through: 8, by: 1) {
            registry.renew(a, now: UInt64(t) * second)
            registry.renew(b, now: UInt64(t) * second)
            registry.renew(branch, now: UInt64(t) * second)
            #expect(registry.poll(now: UInt64(t) * second).isEmpty)
        }
        // a falls silent at 8 s; its lease ends at 13 s.
        registry.renew(b, now: 12 * second)
        registry.renew(branch, now: 12 * second)
        #expect(registry.poll(now: 12 * second).isEmpty)
        #expect(registry.owner(of: "hq")?.client == a)
        let events = registry.poll(now: 13 * second)
        #expect(events.contains(.expired(a)))
        #expect(events.contains(.released(port: "hq", previousOwner: a, watcher: b)))
        #expect(events.contains(.released(port: "hq", previousOwner: a, watcher: branch)))
        #expect(registry.owner(of: "hq") == nil)
        #expect(registry.register("hq", info: "byst://10.0.0.2:7000", by: b, now: 13 * second) == .registered)
        #expect(registry.nextDeadline == 17 * second)
    }

    @Test func reletWithinTheLeaseKeepsPorts() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(5), grace: .zero), now: 0)
        _ = registry.register("hq", info: "x", by: a, now: 0)
        // a's connection drops and comes back 3 s later: it still owns hq.
        #expect(registry.poll(now: 3 * second).isEmpty)
        #expect(registry.relet(a, ports: ["hq": "x"], now: 3 * second) == ["hq"])
        #expect(registry.register("hq", info: "y", by: b, now: 4 * second) == .taken(by: .init(client: a, info: "x")))
        // A relet after the lease ran out gets the port only if nobody took it meanwhile.
        _ = registry.poll(now: 9 * second)
        #expect(registry.register("hq", info: "y", by: b, now: 9 * second) == .registered)
        #expect(registry.relet(a, ports: ["hq": "x"], now: 10 * second) == [])
    }

    @Test func afterARestartPreviousOwnersReletBeforeAnyoneRegisters() {
        // A fresh registry (it restarted at t = 100 s) with a 10 s grace period.
        var registry = PortRegistry(configuration: .init(lease: .seconds(5), grace: .seconds(10)), now: 100 * second)
        #expect(registry.register("hq", info: "b", by: b, now: 101 * second) == .retryLater(until: 110 * second))
        #expect(registry.relet(a, ports: ["hq": "a"], now: 102 * second) == ["hq"])
        #expect(registry.register("hq", info: "b", by: b, now: 111 * second) == .taken(by: .init(client: a, info: "a")))
        #expect(registry.register("other", info: "b", by: b, now: 111 * second) == .registered)
    }

    @Test func messagesReachTheOwner() {
        var registry = PortRegistry(configuration: .init(grace: .zero), now: 0)
        let toNobody = registry.send("hello", to: "hq", from: branch, now: 0)
        #expect(!toNobody)
        _ = registry.register("hq", info: "x", by: a, now: 0)
        let toOwner = registry.send("hello", to: "hq", from: branch, now: 0)
        #expect(toOwner)
        #expect(registry.poll(now: 0) == [.message(to: a, from: branch, port: "hq", body: "hello")])
    }

    /// Random registers, unregisters, relets, disconnects and silences over simulated time:
    /// no port ever has two owners, and every owner has a live lease.
    @Test func twoClientsNeverOwnOnePort() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .seconds(2)), now: 0)
        let clients = (0..<5).map { RegistryClientID("c\($0)") }
        let ports = ["p0", "p1", "p2"]
        var generator = SplitMix64(seed: 42)
        var now: Nanoseconds = 0
        var alive: [RegistryClientID: Nanoseconds] = [:]
        for _ in 0..<20_000 {
            now += UInt64(generator.next() % 300) * 1_000_000
            let client = clients[Int(generator.next() % 5)]
            let port = ports[Int(generator.next() % 3)]
            switch generator.next() % 6 {
            case 0, 1: _ = registry.register(port, info: client.rawValue, by: client, now: now)
            case 2: registry.unregister(port, by: client, now: now)
            case 3: _ = registry.relet(client, ports: [port: client.rawValue], now: now)
            case 4: registry.disconnect(client)
            case 5 where generator.next() % 2 == 0: registry.sessionClosed(client, now: now)
            default: break  // silence: leases run down
            }
            if generator.next() % 6 < 4 { alive[client] = now }
            _ = registry.poll(now: now)
            var seen: [String: RegistryClientID] = [:]
            for client in clients {
                for owned in registry.ports(of: client) {
                    #expect(seen[owned] == nil, "\(owned) owned by \(client) and \(seen[owned].map(\.rawValue) ?? "")")
                    seen[owned] = client
                    #expect(registry.owner(of: owned)?.client == client)
                }
            }
            for port in ports {
                if let owner = registry.owner(of: port) { #expect(seen[port] == owner.client) }
            }
        }
    }

    // MARK: Close grace (a client's connection closed by its end)

    @Test func aClosedSessionLosesItsPortsAfterTheCloseGraceAndWatchersAreTold() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .milliseconds(300)), now: 0)
        #expect(registry.register("hq", info: "a", by: a, now: 0) == .registered)
        registry.watch("hq", by: b, now: 0)
        registry.sessionClosed(a, now: 100_000_000)
        #expect(registry.nextDeadline == 400_000_000)
        #expect(registry.poll(now: 399_999_999).isEmpty)
        #expect(registry.owner(of: "hq")?.client == a)
        let events = registry.poll(now: 400_000_000)
        #expect(events == [.revoked(port: "hq", owner: a), .released(port: "hq", previousOwner: a, watcher: b), .closed(a)])
        #expect(registry.owner(of: "hq") == nil)
        #expect(registry.register("hq", info: "b", by: b, now: 400_000_000) == .registered)
    }

    @Test func aClientThatSpeaksWithinTheCloseGraceKeepsItsPortsWithoutAFlap() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .milliseconds(300)), now: 0)
        _ = registry.register("hq", info: "a", by: a, now: 0)
        registry.watch("hq", by: b, now: 0)
        registry.sessionClosed(a, now: 100_000_000)
        #expect(registry.isClosing(a))
        // Re-dialed and relet (the hello of a new stream) before the grace ends.
        #expect(registry.relet(a, ports: ["hq": "a"], now: 350_000_000) == ["hq"])
        #expect(!registry.isClosing(a))
        #expect(registry.poll(now: 2_000_000_000).isEmpty)  // no release, no claim: watchers saw nothing
        #expect(registry.owner(of: "hq")?.client == a)
        // A link back on the same session (a keepalive follows) ends the grace the same way.
        registry.sessionClosed(a, now: 2_000_000_000)
        registry.sessionResumed(a)
        #expect(registry.poll(now: 2_300_000_000).isEmpty)
        #expect(registry.owner(of: "hq")?.client == a)
    }

    @Test func aRestartedProcessInTheCloseGraceDoesNotInheritPortsItDoesNotName() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .milliseconds(300)), now: 0)
        _ = registry.register("hq", info: "a", by: a, now: 0)
        registry.watch("hq", by: b, now: 0)
        registry.sessionClosed(a, now: 100_000_000)
        #expect(registry.relet(a, ports: [:], now: 200_000_000).isEmpty)
        #expect(registry.owner(of: "hq") == nil)
        #expect(registry.poll(now: 200_000_000) == [.revoked(port: "hq", owner: a), .released(port: "hq", previousOwner: a, watcher: b)])
    }

    @Test func withoutACloseOnlyTheLeaseReleases() {
        // A silent partition: the registry sees no FIN or RST, so nobody calls sessionClosed.
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .milliseconds(300)), now: 0)
        _ = registry.register("hq", info: "a", by: a, now: 0)
        #expect(registry.poll(now: 2_999_000_000).isEmpty)
        #expect(registry.poll(now: 3_000_000_000).contains(.expired(a)))
        // A zero close grace keeps the lease rule even after a close.
        var leaseOnly = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .zero), now: 0)
        _ = leaseOnly.register("hq", info: "a", by: a, now: 0)
        leaseOnly.sessionClosed(a, now: 0)
        #expect(!leaseOnly.isClosing(a))
        #expect(leaseOnly.poll(now: 2_999_000_000).isEmpty)
        #expect(leaseOnly.owner(of: "hq")?.client == a)
    }

    @Test func theCloseGraceNeverOutlivesTheLease() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .milliseconds(300)), now: 0)
        _ = registry.register("hq", info: "a", by: a, now: 0)
        registry.sessionClosed(a, now: 2_900_000_000)
        #expect(registry.nextDeadline == 3_000_000_000)
        #expect(registry.poll(now: 3_000_000_000).contains(.expired(a)))
        #expect(registry.owner(of: "hq") == nil)
    }

    @Test func aPortReletAfterARestartAndReleasedAgainIsFreeDuringTheGrace() {
        var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .seconds(10), closeGrace: .milliseconds(300)), now: 0)
        #expect(registry.relet(a, ports: ["hq": "a"], now: 1 * second) == ["hq"])
        // Another port nobody has relet yet stays protected for its previous owner.
        #expect(registry.register("ops", info: "b", by: b, now: 1 * second) == .retryLater(until: 10 * second))
        registry.sessionClosed(a, now: 2 * second)
        _ = registry.poll(now: 2 * second + 300_000_000)
        #expect(registry.owner(of: "hq") == nil)
        #expect(registry.register("hq", info: "b", by: b, now: 2 * second + 300_000_000) == .registered)
    }
}
