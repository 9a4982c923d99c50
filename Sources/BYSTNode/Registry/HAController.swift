import BYSTProto
import Logging
import NIOCore

/// Runs `[ha]`: drives a `GatewayRole` with the registry backend's answers and the clock,
/// and turns its actions into the node's gateway duties (Node+HA.swift).
final class HAController {
    struct Transition: Sendable {
        var role: GatewayRole.State
        /// Wall clock (ns since the epoch), for status and for comparing nodes' logs.
        var at: UInt64
        var reason: String
    }

    let config: HAConfig
    private unowned let node: Node
    private let backend: RegistryBackend
    private var role: GatewayRole
    private var timer: Scheduled<Void>?
    private(set) var transitions: [Transition] = []
    private(set) var transitionCount = 0
    /// The port's owner as last heard (nil: free or unknown).
    private(set) var owner: PortOwner?
    /// After `stop`, late answers (a claim in flight) change nothing.
    private var stopped = false

    init(config: HAConfig, lease: Duration, backend: RegistryBackend, node: Node) {
        self.config = config
        self.node = node
        self.backend = backend
        role = GatewayRole(retryInterval: lease)
    }

    var state: GatewayRole.State { role.state }
    var validUntil: Nanoseconds? { role.validUntil }

    func start() {
        backend.watch(config.port)
        node.logger.info("HA port '\(config.port)': standby, claiming it at the \(backend.description)")
        perform(role.start(now: Clocks.monotonic()))
    }

    func stop() {
        stopped = true
        timer?.cancel()
        timer = nil
        if role.state == .active { node.stepDownGateway(reason: "shutting down") }
    }

    func handle(_ event: RegistryEvent) {
        guard !stopped else { return }
        let now = Clocks.monotonic()
        switch event {
        case .connected:
            perform(role.registryConnected(now: now))
        case .disconnected:
            break  // the lease runs on: `tick` steps down if it is not renewed in time
        case .renewed(let validUntil, let sentAt):
            role.renewed(validUntil: validUntil, sentAt: sentAt)
            rearm()
        case .sessionDropped(let closeGrace):
            role.registrySessionDropped(closeGrace: closeGrace, now: now)
            if role.awaitingRelet {
                node.logger.notice("HA port '\(config.port)': registry connection closed; stepping down in \(closeGrace - closeGrace / 3) unless it is back")
            }
            rearm()
        case .registryStateGone(let reason):
            if role.awaitingRelet {
                node.logger.notice("HA port '\(config.port)': \(reason): nothing there can give our port away; the lease decides")
            }
            role.registryStateGone(now: now)
            rearm()
        case .lost(let port) where port == config.port:
            perform(role.lost(now: now))
        case .owner(let port, let owner) where port == config.port:
            self.owner = owner
            perform(role.ownerChanged(free: owner == nil, now: now))
        case .lost, .owner:
            break
        }
    }

    private func perform(_ actions: [GatewayRole.Action]) {
        guard !stopped else { return }
        for action in actions {
            switch action {
            case .claim:
                backend.register(config.port, info: config.info) { [unowned self] result in
                    let now = Clocks.monotonic()
                    if let validUntil = backend.validUntil { role.renewed(validUntil: validUntil) }
                    switch result {
                    case .success(.owned):
                        perform(role.claimResult(owned: true, now: now))
                    case .success(.taken(let owner)):
                        self.owner = owner
                        if transitions.isEmpty { record(.standby, "port owned by '\(owner.node)'") }
                        perform(role.claimResult(owned: false, now: now))
                    case .failure(let failure) where failure.denied:
                        node.logLimiter.log(.registryDenial, level: .error,
                                            "HA port '\(config.port)': the registry does not let us own it: \(failure)", to: node.logger)
                        perform(role.claimFailed(now: now))
                    case .failure(let failure):
                        node.logger.debug("HA port '\(config.port)': claim failed: \(failure)")
                        perform(role.claimFailed(now: now))
                    }
                }
            case .activate:
                let validFor = role.validUntil.map { Double(Int64($0) - Int64(Clocks.monotonic())) / 1e6 } ?? 0
                record(.active, "registered the port (lease valid for \(Int(validFor)) ms)")
                node.activateGateway()
            case .stepDown(let reason):
                record(.standby, "stepped down: \(reason)")
                node.stepDownGateway(reason: reason)
            }
        }
        rearm()
    }

    private func record(_ state: GatewayRole.State, _ reason: String) {
        transitions.append(Transition(role: state, at: Clocks.wall(), reason: reason))
        if transitions.count > 32 { transitions.removeFirst() }
        transitionCount += 1
        node.metrics.haTransition(active: state == .active)
        let level: Logger.Level = state == .active || reason.hasPrefix("stepped") ? .notice : .info
        node.logger.log(level: level, "HA port '\(config.port)': \(state) — \(reason)")
        node.haRoleChanged(port: config.port, to: state, reason: reason)
    }

    private func rearm() {
        timer?.cancel()
        timer = nil
        guard let deadline = role.nextDeadline else { return }
        timer = node.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [unowned self] in
            timer = nil
            perform(role.tick(now: Clocks.monotonic()))
        }
    }
}
