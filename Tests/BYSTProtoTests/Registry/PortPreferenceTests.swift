import Testing
@testable import BYSTProto

/// Active/active: two gateways, two ports, each preferring one. Driven against the real
/// `PortRegistry` (close grace 300 ms) in steps of 50 ms: take-over when a gateway dies,
/// hand-back exactly once when it returns and stays, nothing when it comes and goes within
/// the hold time, and never two gateways active for a port.
@Suite struct PortPreferenceTests {
    static let ms: Nanoseconds = 1_000_000

    @Test func aNonPreferredPortIsClaimableOnlyWhileNobodyWantsIt() {
        var preference = PortPreference(preferred: false, hold: .seconds(3))
        #expect(preference.mayClaim)
        preference.wantChanged(held: true, now: 100 * Self.ms)
        #expect(!preference.mayClaim)
        #expect(!preference.shouldHandBack(now: 3099 * Self.ms))
        #expect(preference.shouldHandBack(now: 3100 * Self.ms))
        #expect(preference.handBackAt == 3100 * Self.ms)
        // Held again (a renewal's notice) does not restart the hold.
        preference.wantChanged(held: true, now: 2000 * Self.ms)
        #expect(preference.handBackAt == 3100 * Self.ms)
        preference.wantChanged(held: false, now: 2500 * Self.ms)
        #expect(preference.mayClaim && preference.handBackAt == nil)
        let preferred = PortPreference(preferred: true)
        #expect(preferred.mayClaim && !preferred.shouldHandBack(now: .max))
    }

    @Test func theRightToOwnAPortCoversItsWantPortOnly() {
        let a = RegistryClientID("hub-a")
        let permissions = RegistryPermissions([a: ["hq-1"]])
        #expect(permissions.mayOwn("hq-1", client: a) && permissions.mayOwn("hq-1.want", client: a))
        #expect(!permissions.mayOwn("hq-2.want", client: a) && !permissions.mayOwn("hq-1.want", client: RegistryClientID("branch")))
        #expect(PortPreference.wantPort(for: "hq-1") == "hq-1.want")
    }

    @Test func gatewayRoleWaitsForTheWantedPortAndHandsItBack() {
        var role = GatewayRole(retryInterval: .seconds(3), preference: PortPreference(preferred: false, hold: .seconds(3)))
        _ = role.wantChanged(held: true, now: 0)
        // Wanted: no claim at start nor when the port comes free; the preferred gateway takes it.
        #expect(role.start(now: 0).isEmpty && role.state == .standby)
        #expect(role.ownerChanged(free: true, now: 10 * Self.ms).isEmpty)
        #expect(role.nextDeadline == nil)
        // Its preferred gateway went away: claim at once.
        #expect(role.wantChanged(held: false, now: 20 * Self.ms) == [.claim])
        role.renewed(validUntil: 10_000 * Self.ms)
        #expect(role.claimResult(owned: true, now: 30 * Self.ms) == [.activate])
        // It is back: hand back after the hold, step down first, then release.
        #expect(role.wantChanged(held: true, now: 1000 * Self.ms).isEmpty)
        #expect(role.nextDeadline == 4000 * Self.ms)
        #expect(role.tick(now: 3999 * Self.ms).isEmpty)
        #expect(role.tick(now: 4000 * Self.ms) == [.stepDown(reason: "handing the port back to its preferred gateway"), .release])
        #expect(role.state == .standby && role.nextDeadline == nil)
        #expect(role.ownerChanged(free: true, now: 4001 * Self.ms).isEmpty)
    }

    @Test func takeOverOnFailureAndHandBackOnceWhenThePreferredGatewayReturns() {
        var net = ActiveActive()
        // a starts alone for a moment and takes both ports; b gets hq-2 back after the hold.
        net.start("a")
        net.run(until: 100 * Self.ms)
        net.start("b")
        net.run(until: 3000 * Self.ms)
        #expect(net.active == ["hq-1": "a", "hq-2": "a"])
        net.run(until: 5000 * Self.ms)
        #expect(net.active == ["hq-1": "a", "hq-2": "b"])

        net.crash("a")
        net.run(until: 6000 * Self.ms)
        #expect(net.active == ["hq-1": "b", "hq-2": "b"])

        net.start("a")
        net.run(until: 8900 * Self.ms)  // 2.9 s after the return: within the hold, nothing moves
        #expect(net.active == ["hq-1": "b", "hq-2": "b"])
        net.run(until: 10_000 * Self.ms)
        #expect(net.active == ["hq-1": "a", "hq-2": "b"])
        net.run(until: 25_000 * Self.ms)
        #expect(net.active == ["hq-1": "a", "hq-2": "b"])
        // hq-1: a, then b (failover), then a (hand-back); hq-2: a, then b (hand-back), then never again.
        #expect(net.owners("hq-1") == ["a", "b", "a"])
        #expect(net.owners("hq-2") == ["a", "b"])
        #expect(net.handBacks == 2)
        #expect(net.maxActive == 1)
    }

    @Test func aPreferredGatewayThatComesAndGoesQuicklyMovesNothing() {
        var net = ActiveActive()
        net.start("a")
        net.start("b")
        net.run(until: 5000 * Self.ms)
        #expect(net.active == ["hq-1": "a", "hq-2": "b"])
        net.crash("a")
        var now: Nanoseconds = 6000 * Self.ms
        net.run(until: now)
        for _ in 0..<5 {
            net.start("a")
            now += 2500 * Self.ms  // shorter than the hold
            net.run(until: now)
            net.crash("a")
            now += 1000 * Self.ms
            net.run(until: now)
        }
        #expect(net.active == ["hq-1": "b", "hq-2": "b"])
        #expect(net.owners("hq-1") == ["a", "b"])
        #expect(net.owners("hq-2") == ["a", "b"])
        #expect(net.handBacks == 1)
        #expect(net.maxActive == 1)
    }
}

/// Gateways "a" (ports hq-1, hq-2) and "b" (hq-2, hq-1) at one `PortRegistry`, wired the way
/// HAController wires a gateway: the preferred port's `.want` held while running, the
/// non-preferred port's `.want` watched.
private struct ActiveActive {
    static let ms = PortPreferenceTests.ms
    let ports = ["a": ["hq-1", "hq-2"], "b": ["hq-2", "hq-1"]]
    var registry = PortRegistry(configuration: .init(lease: .seconds(3), grace: .zero, closeGrace: .milliseconds(300)), now: 0)
    var roles: [String: [String: GatewayRole]] = [:]
    var now: Nanoseconds = 0
    /// Per port, the gateways serving it now, and each activation in order.
    var serving: [String: Set<String>] = [:]
    var activations: [String: [String]] = [:]
    var handBacks = 0
    var maxActive = 0

    var active: [String: String] { serving.compactMapValues { $0.count == 1 ? $0.first : nil } }
    func owners(_ port: String) -> [String] { activations[port] ?? [] }
    func moves(_ port: String) -> Int { owners(port).count }

    mutating func start(_ gateway: String) {
        let list = ports[gateway] ?? []
        let id = RegistryClientID(gateway)
        _ = registry.register(PortPreference.wantPort(for: list[0]), info: "", by: id, now: now)
        var mine: [String: GatewayRole] = [:]
        for (index, port) in list.enumerated() {
            registry.watch(port, by: id, now: now)
            var role = GatewayRole(retryInterval: .seconds(3), preference: PortPreference(preferred: index == 0))
            if index > 0 {
                registry.watch(PortPreference.wantPort(for: port), by: id, now: now)
                _ = role.wantChanged(held: registry.owner(of: PortPreference.wantPort(for: port)) != nil, now: now)
            }
            mine[port] = role
        }
        roles[gateway] = mine
        for port in list { perform(gateway, port) { $0.start(now: $1) } }
    }

    mutating func crash(_ gateway: String) {
        roles[gateway] = nil
        for port in serving.keys { serving[port]?.remove(gateway) }
        registry.sessionClosed(RegistryClientID(gateway), now: now)
    }

    mutating func run(until end: Nanoseconds) {
        while now < end {
            now += 50 * Self.ms
            for gateway in roles.keys.sorted() {
                registry.renew(RegistryClientID(gateway), now: now)
                for port in ports[gateway] ?? [] { roles[gateway]?[port]?.renewed(validUntil: now + 2400 * Self.ms) }
            }
            deliver()
            for gateway in roles.keys.sorted() {
                for port in ports[gateway] ?? [] { perform(gateway, port) { $0.tick(now: $1) } }
            }
        }
    }

    private mutating func deliver() {
        for event in registry.poll(now: now) {
            switch event {
            case .released(let port, _, let watcher):
                notify(watcher.rawValue, port, held: false)
            case .claimed(let port, _, let watcher):
                notify(watcher.rawValue, port, held: true)
            case .revoked(let port, let owner):
                perform(owner.rawValue, port) { $0.lost(now: $1) }
            case .expired, .closed, .message:
                break
            }
        }
    }

    private mutating func notify(_ gateway: String, _ port: String, held: Bool) {
        if port.hasSuffix(PortPreference.wantSuffix) {
            perform(gateway, String(port.dropLast(PortPreference.wantSuffix.count))) { $0.wantChanged(held: held, now: $1) }
        } else {
            perform(gateway, port) { $0.ownerChanged(free: !held, now: $1) }
        }
    }

    private mutating func perform(_ gateway: String, _ port: String, _ input: (inout GatewayRole, Nanoseconds) -> [GatewayRole.Action]) {
        guard var role = roles[gateway]?[port] else { return }
        let actions = input(&role, now)
        roles[gateway]?[port] = role
        for action in actions {
            switch action {
            case .claim:
                let result = registry.register(port, info: "", by: RegistryClientID(gateway), now: now)
                let owned = result == .registered || result == .alreadyYours
                perform(gateway, port) { role, now in
                    role.renewed(validUntil: now + 2400 * Self.ms)  // the answer renews the lease
                    return role.claimResult(owned: owned, now: now)
                }
            case .activate:
                serving[port, default: []].insert(gateway)
                activations[port, default: []].append(gateway)
                maxActive = max(maxActive, serving[port]?.count ?? 0)
            case .stepDown:
                serving[port]?.remove(gateway)
            case .release:
                handBacks += 1
                registry.unregister(port, by: RegistryClientID(gateway), now: now)
            }
        }
        deliver()
    }
}
