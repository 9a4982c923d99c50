// An HA gateway's role for its port (docs/ARCHITECTURE.md §5), sans-IO: fed registry outcomes and
// time, it says when to claim the port, when to become active and when to step down.
//
//   standby ─claim─▶ claiming ─owned─▶ active ─validUntil passes / lost─▶ standby
//      ▲               │ taken / failed                                     │
//      └───────────────┴──── owner released, or retry timer ◀──────────────┘
//
// **No split brain**: `validUntil` only moves forward on a renewal the registry confirmed,
// and is computed by the backend from the confirmed request's *send* time + lease − a
// margin. An active gateway whose `validUntil` passes steps down on that instant, before the
// registry (which counts the lease from when it *received* that request) can give the
// port to anyone else.

public struct GatewayRole: Sendable {
    public enum State: String, Sendable, Equatable {
        case standby, claiming, active
    }

    public enum Action: Sendable, Equatable {
        /// Ask the registry for the port.
        case claim
        /// Start serving: accept links, install routes, publish endpoints.
        case activate
        /// Stop serving at once: close listeners and links, remove routes.
        case stepDown(reason: String)
    }

    public private(set) var state: State = .standby
    /// Until when the port is surely ours (monotonic ns), from the backend's confirmations.
    public private(set) var validUntil: Nanoseconds?
    /// Standby: when to try claiming again even without a release notice.
    private var retryAt: Nanoseconds?
    /// How often a standby gateway re-tries a port that is taken (a safety net for a missed
    /// release notice) or that the registry could not be asked about.
    public let retryInterval: Nanoseconds

    public init(retryInterval: Duration) {
        self.retryInterval = retryInterval.nanoseconds
    }

    public mutating func start(now: Nanoseconds) -> [Action] { claim() }

    /// The registry confirmed our lease (any answered request or keepalive).
    public mutating func renewed(validUntil: Nanoseconds) {
        self.validUntil = max(self.validUntil ?? 0, validUntil)
    }

    /// The answer to `claim`.
    public mutating func claimResult(owned: Bool, now: Nanoseconds) -> [Action] {
        guard state == .claiming else { return [] }
        guard owned, let validUntil, validUntil > now else {
            state = .standby
            retryAt = now + (owned ? 0 : retryInterval)
            return []
        }
        state = .active
        retryAt = nil
        return [.activate]
    }

    /// The registry could not answer the claim (unreachable, restarting).
    public mutating func claimFailed(now: Nanoseconds) -> [Action] {
        guard state == .claiming else { return [] }
        state = .standby
        retryAt = now + min(retryInterval, 1_000_000_000)
        return []
    }

    /// The port's owner changed; `free` when nobody holds it now.
    public mutating func ownerChanged(free: Bool, now: Nanoseconds) -> [Action] {
        guard free, state == .standby else { return [] }
        return claim()
    }

    /// The registry (re)connected: a standby gateway asks again at once.
    public mutating func registryConnected(now: Nanoseconds) -> [Action] {
        state == .standby ? claim() : []
    }

    /// The registry says the port is no longer ours.
    public mutating func lost(now: Nanoseconds) -> [Action] {
        guard state == .active else { return [] }
        return stepDown("the registry released our port (lease lapsed there)", now: now)
    }

    public mutating func tick(now: Nanoseconds) -> [Action] {
        switch state {
        case .active:
            if let validUntil, now >= validUntil {
                return stepDown("lease not renewed in time (registry unreachable?)", now: now)
            }
        case .standby:
            if let retryAt, now >= retryAt { return claim() }
        case .claiming:
            break
        }
        return []
    }

    /// When `tick` next has work.
    public var nextDeadline: Nanoseconds? {
        switch state {
        case .active: validUntil
        case .standby: retryAt
        case .claiming: nil
        }
    }

    private mutating func claim() -> [Action] {
        state = .claiming
        retryAt = nil
        return [.claim]
    }

    private mutating func stepDown(_ reason: String, now: Nanoseconds) -> [Action] {
        state = .standby
        // Ask again soon: if the port is free (the registry restarted, or it was a blip)
        // we take it back; if someone else has it we stay standby.
        retryAt = now + min(retryInterval, 1_000_000_000)
        return [.stepDown(reason: reason)]
    }
}
