import Testing
@testable import BYSTProto

/// The embedded registry's request handling with an injected clock.
@Suite struct RegistryServiceTests {
    let a = RegistryClientID("hub-a")
    let b = RegistryClientID("hub-b")
    let branch = RegistryClientID("branch")
    let ms: Nanoseconds = 1_000_000

    /// The gateways may own any port; the branch none.
    func service() -> RegistryService {
        RegistryService(configuration: .init(grace: .zero), now: 0, permissions: .unrestricted([a, b]))
    }

    @Test func helloComesFirstAndLeasesAreClamped() {
        var registry = service()
        #expect(registry.handle(.register(port: "hq", info: "x"), from: a, now: 0) == .error(.helloFirst, "say hello first"))
        #expect(registry.handle(.hello(leaseMilliseconds: 10, relet: []), from: a, now: 0) == .welcome(leaseMilliseconds: 500, closeGraceMilliseconds: 300, ports: []))
        #expect(registry.handle(.hello(leaseMilliseconds: 999_999, relet: []), from: b, now: 0) == .welcome(leaseMilliseconds: 60_000, closeGraceMilliseconds: 300, ports: []))
    }

    @Test func watchersHearReleaseAndNewOwnerAndTheOldOwnerHearsItLost() {
        var registry = service()
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: b, now: 0)
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: branch, now: 0)
        #expect(registry.handle(.register(port: "hq", info: "byst://a"), from: a, now: 0) == .registered)
        #expect(registry.handle(.register(port: "hq", info: "byst://b"), from: b, now: 0) == .taken(owner: "hub-a", info: "byst://a"))
        _ = registry.handle(.watch(port: "hq"), from: b, now: 0)
        _ = registry.handle(.watch(port: "hq"), from: branch, now: 0)
        #expect(registry.handle(.query(port: "hq"), from: branch, now: 0) == .owner(.init(node: "hub-a", info: "byst://a")))
        // b and branch keep renewing; a falls silent: its lease ends at 3 s.
        for t in stride(from: 500, through: 2500, by: 500) {
            _ = registry.handle(.keepalive, from: b, now: Nanoseconds(t) * ms)
            _ = registry.handle(.keepalive, from: branch, now: Nanoseconds(t) * ms)
            #expect(registry.notices(now: Nanoseconds(t) * ms).isEmpty)
        }
        #expect(registry.nextDeadline == 3000 * ms)
        let notices = registry.notices(now: 3000 * ms)
        #expect(notices.contains { $0.0 == a && $0.1 == .lost(port: "hq") })
        #expect(notices.contains { $0.0 == b && $0.1 == .ownerChanged(port: "hq", owner: nil) })
        #expect(notices.contains { $0.0 == branch && $0.1 == .ownerChanged(port: "hq", owner: nil) })
        #expect(registry.handle(.register(port: "hq", info: "byst://b"), from: b, now: 3001 * ms) == .registered)
        let claimed = registry.notices(now: 3001 * ms)
        #expect(claimed.count == 1)
        #expect(claimed.first?.0 == branch)
        #expect(claimed.first?.1 == .ownerChanged(port: "hq", owner: .init(node: "hub-b", info: "byst://b")))
    }

    @Test func aReconnectWithinTheLeaseReletsAndNobodyElseGetsThePort() {
        var registry = service()
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        _ = registry.handle(.register(port: "hq", info: "x"), from: a, now: 0)
        registry.streamClosed(a)
        #expect(registry.handle(.keepalive, from: a, now: 100 * ms) == .error(.helloFirst, "say hello first"))
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: b, now: 1000 * ms)
        #expect(registry.handle(.register(port: "hq", info: "y"), from: b, now: 1000 * ms) == .taken(owner: "hub-a", info: "x"))
        let relet = registry.handle(.hello(leaseMilliseconds: 3000, relet: [.init(port: "hq", info: "x")]), from: a, now: 2000 * ms)
        #expect(relet == .welcome(leaseMilliseconds: 3000, closeGraceMilliseconds: 300, ports: ["hq"]))
        #expect(registry.notices(now: 4500 * ms).isEmpty)
    }

    @Test func limitsAndBadNames() {
        var registry = service()
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        #expect(registry.handle(.register(port: "", info: "x"), from: a, now: 0) == .error(.badRequest, "bad port name or info"))
        #expect(registry.handle(.register(port: "a\nb", info: "x"), from: a, now: 0) == .error(.badRequest, "bad port name or info"))
        let bigInfo = String(repeating: "x", count: RegistryService.maxInfoBytes + 1)
        #expect(registry.handle(.register(port: "hq", info: bigInfo), from: a, now: 0) == .error(.badRequest, "bad port name or info"))
        for index in 0..<RegistryService.maxPortsPerClient {
            #expect(registry.handle(.register(port: "p\(index)", info: ""), from: a, now: 0) == .registered)
        }
        #expect(registry.handle(.register(port: "one-more", info: ""), from: a, now: 0)
            == .error(.limit, "more than \(RegistryService.maxPortsPerClient) ports"))
        #expect(registry.handle(.send(port: "nobody", body: "x"), from: a, now: 0) == .error(.noOwner, "port nobody has no owner"))
    }

    @Test func configuredLimitsApplyPerClient() {
        var registry = RegistryService(configuration: .init(grace: .zero), now: 0, limits: .init(portsPerClient: 2, watchesPerClient: 1),
                                       permissions: .unrestricted([a, b]))
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: b, now: 0)
        #expect(registry.handle(.register(port: "p1", info: ""), from: a, now: 0) == .registered)
        #expect(registry.handle(.register(port: "p2", info: ""), from: a, now: 0) == .registered)
        #expect(registry.handle(.register(port: "p3", info: ""), from: a, now: 0) == .error(.limit, "more than 2 ports"))
        // Re-registering one's own port is not a new one; other clients have their own count.
        #expect(registry.handle(.register(port: "p2", info: "again"), from: a, now: 0) == .registered)
        #expect(registry.handle(.register(port: "p3", info: ""), from: b, now: 0) == .registered)
        #expect(registry.handle(.watch(port: "p1"), from: b, now: 0) == .done)
        #expect(registry.handle(.watch(port: "p2"), from: b, now: 0) == .error(.limit, "more than 1 watches"))
        #expect(registry.handle(.hello(leaseMilliseconds: 3000, relet: [.init(port: "x", info: ""), .init(port: "y", info: ""),
                                                                        .init(port: "z", info: "")]), from: a, now: 0)
            == .error(.limit, "more than 2 ports"))
    }

    // MARK: Authorization (deny by default)

    /// A branch's key asking for a gateway's port while it is free: refused, recorded, and
    /// the port stays free; its own queries and watches still work.
    @Test func aClientWithoutThePortCannotRegisterItEvenWhenFree() {
        var registry = RegistryService(configuration: .init(grace: .zero), now: 0,
                                       permissions: RegistryPermissions([a: ["hq"]]))
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: branch, now: 0)
        #expect(registry.handle(.register(port: "hq", info: "byst://evil"), from: branch, now: 0)
            == .error(.notAllowed, "port hq is not among the ports this registry lets 'branch' own"))
        #expect(registry.registry.owner(of: "hq") == nil)
        #expect(registry.takeDenials().map { "\($0.0):\($0.1)" } == ["branch:hq"])
        #expect(registry.takeDenials().isEmpty)
        #expect(registry.handle(.watch(port: "hq"), from: branch, now: 0) == .done)
        #expect(registry.handle(.query(port: "hq"), from: branch, now: 0) == .owner(nil))
        // A gateway may own only what its list says.
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        #expect(registry.handle(.register(port: "other", info: "x"), from: a, now: 0) == .error(.notAllowed, "port other is not among the ports this registry lets 'hub-a' own"))
        #expect(registry.handle(.register(port: "hq", info: "byst://a"), from: a, now: 0) == .registered)
    }

    /// After a registry restart every port is free: a relet claim is the other way in.
    @Test func aReletOfAPortTheClientMayNotOwnIsLeftOut() {
        var registry = RegistryService(configuration: .init(grace: .seconds(10)), now: 0,
                                       permissions: RegistryPermissions([a: ["hq"]]))
        let claims = [RegistryPortClaim(port: "hq", info: "byst://evil"), RegistryPortClaim(port: "x", info: "y")]
        #expect(registry.handle(.hello(leaseMilliseconds: 3000, relet: claims), from: branch, now: 0) == .welcome(leaseMilliseconds: 3000, closeGraceMilliseconds: 300, ports: []))
        #expect(registry.registry.owner(of: "hq") == nil)
        #expect(registry.takeDenials().map(\.1) == ["hq", "x"])
        #expect(registry.handle(.hello(leaseMilliseconds: 3000, relet: claims), from: a, now: 0) == .welcome(leaseMilliseconds: 3000, closeGraceMilliseconds: 300, ports: ["hq"]))
    }

    /// A reload that withdraws a permission takes the port away at once.
    @Test func withdrawnPermissionReleasesThePortAndTellsEveryone() {
        var registry = RegistryService(configuration: .init(grace: .zero), now: 0, permissions: RegistryPermissions([a: ["hq"]]))
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: branch, now: 0)
        _ = registry.handle(.watch(port: "hq"), from: branch, now: 0)
        #expect(registry.handle(.register(port: "hq", info: "byst://a"), from: a, now: 0) == .registered)
        _ = registry.notices(now: 0)
        registry.updatePermissions(RegistryPermissions([b: ["hq"]]))
        #expect(registry.registry.owner(of: "hq") == nil)
        let notices = registry.notices(now: 1)
        #expect(notices.contains { $0.0 == a && $0.1 == .lost(port: "hq") })
        #expect(notices.contains { $0.0 == branch && $0.1 == .ownerChanged(port: "hq", owner: nil) })
    }

    @Test func aClosedClientsPortsGoAfterTheCloseGraceAndWatchersAreTold() {
        var registry = RegistryService(configuration: .init(grace: .zero, closeGrace: .milliseconds(250)), now: 0,
                                       permissions: .unrestricted([a, b]))
        #expect(registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
            == .welcome(leaseMilliseconds: 3000, closeGraceMilliseconds: 250, ports: []))
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: b, now: 0)
        #expect(registry.handle(.register(port: "hq", info: "a"), from: a, now: 0) == .registered)
        _ = registry.handle(.watch(port: "hq"), from: b, now: 0)
        registry.sessionClosed(a, now: 1_000_000_000)
        #expect(registry.notices(now: 1_249_000_000).isEmpty)
        let notices = registry.notices(now: 1_250_000_000)
        #expect(notices.contains { $0.0 == b && $0.1 == .ownerChanged(port: "hq", owner: nil) })
        #expect(notices.contains { $0.0 == a && $0.1 == .lost(port: "hq") })
        #expect(registry.handle(.register(port: "hq", info: "b"), from: b, now: 1_250_000_000) == .registered)
    }

    @Test func aClientReletingWithinTheCloseGraceKeepsItsPort() {
        var registry = RegistryService(configuration: .init(grace: .zero, closeGrace: .milliseconds(250)), now: 0,
                                       permissions: .unrestricted([a, b]))
        _ = registry.handle(.hello(leaseMilliseconds: 3000, relet: []), from: a, now: 0)
        _ = registry.handle(.register(port: "hq", info: "a"), from: a, now: 0)
        registry.sessionClosed(a, now: 1_000_000_000)
        registry.streamClosed(a)
        #expect(registry.handle(.hello(leaseMilliseconds: 3000, relet: [.init(port: "hq", info: "a")]), from: a, now: 1_100_000_000)
            == .welcome(leaseMilliseconds: 3000, closeGraceMilliseconds: 250, ports: ["hq"]))
        #expect(registry.notices(now: 2_000_000_000).isEmpty)
        #expect(registry.registry.owner(of: "hq")?.client == a)
    }
}
