import BYSTProto
import Logging
import NIOCore

/// Runs `[ha]`: one `GatewayRole` per port of `ports`, driven with the registry backend's
/// answers and the clock; their actions become the node's gateway duties for that port
/// (Node+HA.swift). With several ports the first is preferred: we hold its `.want` port at the
/// registry while we run, and watch the others' (PortPreference).
final class HAController {
    struct Transition: Sendable {
        var role: GatewayRole.State
        /// Wall clock (ns since the epoch), for status and for comparing nodes' logs.
        var at: UInt64
        var reason: String
    }

    /// One port of `[ha] ports`.
    final class Port {
        let name: String
        fileprivate(set) var role: GatewayRole
        fileprivate(set) var transitions: [Transition] = []
        fileprivate(set) var transitionCount = 0
        /// The port's owner as last heard (nil: free or unknown).
        fileprivate(set) var owner: PortOwner?
        fileprivate var timer: Scheduled<Void>?

        init(name: String, role: GatewayRole) {
            self.name = name
            self.role = role
        }

        var state: GatewayRole.State { role.state }
        var preferred: Bool { role.preference.preferred }
    }

    let config: HAConfig
    private unowned let node: Node
    private let backend: RegistryBackend
    /// In the order of `config.ports`.
    let ports: [Port]
    /// With several ports: `PortPreference.wantPort` of our preferred port, held while we run.
    private let wantPort: String?
    private var wantHeld = false
    private var wantRetry: Scheduled<Void>?
    /// After `stop`, late answers (a claim in flight) change nothing.
    private var stopped = false
    /// Told of every role a port takes, once recorded (HAService: addresses, notify command).
    var onRoleChanged: ((_ port: String, _ role: GatewayRole.State, _ reason: String) -> Void)?

    init(config: HAConfig, lease: Duration, backend: RegistryBackend, node: Node) {
        self.config = config
        self.node = node
        self.backend = backend
        ports = config.ports.enumerated().map { index, name in
            Port(name: name, role: GatewayRole(retryInterval: lease, preference: PortPreference(preferred: index == 0)))
        }
        wantPort = config.ports.count > 1 ? config.ports.first.map(PortPreference.wantPort(for:)) : nil
    }

    /// Whether we serve any port now (none once stopping).
    var anyActive: Bool { !activePorts.isEmpty }
    /// The names of the ports this gateway is active for (none once stopped).
    var activePorts: Set<String> { stopped ? [] : Set(ports.filter { $0.state == .active }.map(\.name)) }

    func start() {
        for port in ports {
            backend.watch(port.name)
            if !port.preferred { backend.watch(PortPreference.wantPort(for: port.name)) }
        }
        registerWant()
        let list = ports.map { "'\($0.name)'" + ($0.preferred && ports.count > 1 ? " (preferred)" : "") }.joined(separator: ", ")
        node.logger.info("HA ports \(list): standby, claiming at the \(backend.description)")
        for port in ports { perform(port, port.role.start(now: Clocks.monotonic())) }
    }

    func stop() {
        stopped = true
        wantRetry?.cancel()
        for port in ports {
            port.timer?.cancel()
            port.timer = nil
            if port.state == .active { node.stepDownGateway(port: port.name, reason: "shutting down") }
        }
    }

    func handle(_ event: RegistryEvent) {
        guard !stopped else { return }
        let now = Clocks.monotonic()
        switch event {
        case .connected:
            if !wantHeld { registerWant() }
            for port in ports { perform(port, port.role.registryConnected(now: now)) }
        case .disconnected:
            break  // the lease runs on: `tick` steps down if it is not renewed in time
        case .renewed(let validUntil, let sentAt):
            for port in ports {
                port.role.renewed(validUntil: validUntil, sentAt: sentAt)
                rearm(port)
            }
        case .sessionDropped(let closeGrace):
            for port in ports {
                port.role.registrySessionDropped(closeGrace: closeGrace, now: now)
                if port.role.awaitingRelet {
                    node.logger.notice("HA port '\(port.name)': registry connection closed; stepping down in \(closeGrace - closeGrace / 3) unless it is back")
                }
                rearm(port)
            }
        case .registryStateGone(let reason):
            for port in ports {
                if port.role.awaitingRelet {
                    node.logger.notice("HA port '\(port.name)': \(reason): nothing there can give our port away; the lease decides")
                }
                port.role.registryStateGone(now: now)
                rearm(port)
            }
        case .lost(let name) where name == wantPort:
            wantHeld = false
            registerWant()
        case .lost(let name):
            guard let port = port(named: name) else { return }
            perform(port, port.role.lost(now: now))
        case .owner(let name, let owner):
            if let port = port(named: name) {
                port.owner = owner
                perform(port, port.role.ownerChanged(free: owner == nil, now: now))
            } else if name.hasSuffix(PortPreference.wantSuffix),
                      let port = port(named: String(name.dropLast(PortPreference.wantSuffix.count))), !port.preferred {
                if let owner {
                    let what = "its preferred gateway '\(owner.node)' is there"
                    if port.transitions.isEmpty, port.state == .standby { record(port, .standby, what) } else { node.logger.info("HA port '\(port.name)': \(what)") }
                }
                perform(port, port.role.wantChanged(held: owner != nil, now: now))
            }
        }
    }

    private func port(named name: String) -> Port? { ports.first { $0.name == name } }

    /// Holds our preferred port's `.want` at the registry (re-tried each second until it is).
    private func registerWant() {
        guard let wantPort, !stopped else { return }
        wantRetry?.cancel()
        wantRetry = nil
        backend.register(wantPort, info: config.info) { [unowned self] result in
            guard !stopped else { return }
            switch result {
            case .success(.owned):
                wantHeld = true
            case .success(.taken(let owner)):
                node.logger.warning("HA port '\(wantPort)' is held by '\(owner.node)': another gateway also lists '\(ports[0].name)' first; it gets the port back, not us")
            case .failure(let failure):
                node.logger.debug("HA port '\(wantPort)': register failed: \(failure); again in 1 s")
                wantRetry = node.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [unowned self] in registerWant() }
            }
        }
    }

    private func perform(_ port: Port, _ actions: [GatewayRole.Action]) {
        guard !stopped else { return }
        for action in actions {
            switch action {
            case .claim:
                claim(port)
            case .activate:
                let validFor = port.role.validUntil.map { Double(Int64($0) - Int64(Clocks.monotonic())) / 1e6 } ?? 0
                transition(port, to: .active, "registered the port (lease valid for \(Int(validFor)) ms)")
            case .stepDown(let reason):
                transition(port, to: .standby, "stepped down: \(reason)")
            case .release:
                backend.unregister(port.name)
            }
        }
        rearm(port)
    }

    private func claim(_ port: Port) {
        backend.register(port.name, info: config.info) { [unowned self] result in
            let now = Clocks.monotonic()
            if let validUntil = backend.validUntil { port.role.renewed(validUntil: validUntil) }
            switch result {
            case .success(.owned):
                perform(port, port.role.claimResult(owned: true, now: now))
            case .success(.taken(let owner)):
                port.owner = owner
                if port.transitions.isEmpty { record(port, .standby, "port owned by '\(owner.node)'") }
                perform(port, port.role.claimResult(owned: false, now: now))
            case .failure(let failure) where failure.denied:
                node.logLimiter.log(.registryDenial, level: .error,
                                    "HA port '\(port.name)': the registry does not let us own it: \(failure)", to: node.logger)
                perform(port, port.role.claimFailed(now: now))
            case .failure(let failure):
                node.logger.debug("HA port '\(port.name)': claim failed: \(failure)")
                perform(port, port.role.claimFailed(now: now))
            }
        }
    }

    /// The one place a port becomes active or standby: record it, then serve or stop serving
    /// the port's branches.
    private func transition(_ port: Port, to state: GatewayRole.State, _ reason: String) {
        record(port, state, reason)
        switch state {
        case .active:
            // The registry tells watchers of a new owner, but not the owner itself.
            port.owner = PortOwner(node: node.config.name, info: config.info)
            node.activateGateway(port: port.name)
        case .standby, .claiming: node.stepDownGateway(port: port.name, reason: reason)
        }
    }

    private func record(_ port: Port, _ state: GatewayRole.State, _ reason: String) {
        let at = Clocks.wall()
        port.transitions.append(Transition(role: state, at: at, reason: reason))
        if port.transitions.count > 32 { port.transitions.removeFirst() }
        port.transitionCount += 1
        node.metrics.haTransition(port: port.name, active: state == .active, wallSeconds: Double(at) / 1e9)
        let level: Logger.Level = state == .active || reason.hasPrefix("stepped") ? .notice : .info
        node.logger.log(level: level, "HA port '\(port.name)': \(state) — \(reason)")
        onRoleChanged?(port.name, state, reason)
    }

    private func rearm(_ port: Port) {
        port.timer?.cancel()
        port.timer = nil
        guard !stopped, let deadline = port.role.nextDeadline else { return }
        port.timer = node.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [unowned self] in
            port.timer = nil
            perform(port, port.role.tick(now: Clocks.monotonic()))
        }
    }
}
