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
//
// **Session drops** (embedded registry): a registry that sees our connection end releases
// our port after its close grace G, not after the lease. So when our last connection to it
// ends, we re-dial at once and must be confirmed again (a request sent after the drop) by
// drop + G − G/3, or step down then — before the registry can give the port away. A re-dial
// refused outright (nothing listens: no registry process, so nobody to give the port away),
// or answered by a restarted registry (no state; only relets during its restart grace),
// returns us to the lease rule, so a registry crash and restart changes nothing.
//
// **Preference** (several ports per gateway): `PortPreference` gates every claim and says
// when an active non-preferred owner hands the port back: step down, then release.

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
        /// Release the port at the registry (after `stepDown`: handing it back).
        case release
    }

    public private(set) var state: State = .standby
    /// Until when the port is surely ours (monotonic ns), from the backend's confirmations.
    public private(set) var validUntil: Nanoseconds?
    /// Standby: when to try claiming again even without a release notice.
    private var retryAt: Nanoseconds?
    /// Active, after our registry session dropped: when the drop happened, and the instant
    /// by which a confirmation of a later request must come (else we step down).
    private var drop: (at: Nanoseconds, stepDownAt: Nanoseconds)?
    /// How often a standby gateway re-tries a port that is taken (a safety net for a missed
    /// release notice) or that the registry could not be asked about.
    public let retryInterval: Nanoseconds
    public private(set) var preference: PortPreference

    public init(retryInterval: Duration, preference: PortPreference = PortPreference(preferred: true)) {
        self.retryInterval = retryInterval.nanoseconds
        self.preference = preference
    }

    public mutating func start(now: Nanoseconds) -> [Action] { claim() }

    /// The registry confirmed our lease (any answered request or keepalive), for a request
    /// sent at `sentAt`: one sent after a session drop means the registry has us back.
    public mutating func renewed(validUntil: Nanoseconds, sentAt: Nanoseconds? = nil) {
        self.validUntil = max(self.validUntil ?? 0, validUntil)
        if let drop, let sentAt, sentAt > drop.at { self.drop = nil }
    }

    /// Our last connection to the registry ended (either side closed it); the registry
    /// releases a closed session's ports after `closeGrace` (zero: only when the lease runs
    /// out). Re-dialing is the backend's business; we only set the deadline.
    public mutating func registrySessionDropped(closeGrace: Duration, now: Nanoseconds) {
        guard state == .active, closeGrace > .zero, drop == nil else { return }
        let grace = closeGrace.nanoseconds
        drop = (now, now + grace - grace / 3)
    }

    /// After a drop, the registry turned out to hold no state about us: a re-dial was refused
    /// (nothing listens there) or reached a restarted registry. Nothing can give our port
    /// away (a restarted one lets only previous owners relet during its grace): the lease
    /// rule alone applies again.
    public mutating func registryStateGone(now: Nanoseconds) {
        drop = nil
    }

    /// Whether we wait to be confirmed after a session drop (for status).
    public var awaitingRelet: Bool { drop != nil }

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

    /// The preferred gateway's `PortPreference.wantPort` changed owner (`held`: someone has it).
    public mutating func wantChanged(held: Bool, now: Nanoseconds) -> [Action] {
        let couldClaim = preference.mayClaim
        preference.wantChanged(held: held, now: now)
        if state == .standby, preference.mayClaim, !couldClaim { return claim() }
        return tick(now: now)
    }

    /// The registry says the port is no longer ours.
    public mutating func lost(now: Nanoseconds) -> [Action] {
        guard state == .active else { return [] }
        return stepDown("the registry released our port (lease lapsed there)", now: now)
    }

    public mutating func tick(now: Nanoseconds) -> [Action] {
        switch state {
        case .active:
            if preference.shouldHandBack(now: now) {
                state = .standby
                drop = nil
                retryAt = nil
                return [.stepDown(reason: "handing the port back to its preferred gateway"), .release]
            }
            if let validUntil, now >= validUntil {
                return stepDown("lease not renewed in time (registry unreachable?)", now: now)
            }
            if let drop, now >= drop.stepDownAt {
                return stepDown("registry connection closed and not back within its close grace", now: now)
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
        case .active: [validUntil, drop?.stepDownAt, preference.handBackAt].compactMap { $0 }.min()
        case .standby: retryAt
        case .claiming: nil
        }
    }

    private mutating func claim() -> [Action] {
        guard preference.mayClaim else {
            // Its preferred gateway is there and takes it; `wantChanged` asks again when it goes.
            state = .standby
            retryAt = nil
            return []
        }
        state = .claiming
        retryAt = nil
        return [.claim]
    }

    private mutating func stepDown(_ reason: String, now: Nanoseconds) -> [Action] {
        state = .standby
        drop = nil
        // Ask again soon: if the port is free (the registry restarted, or it was a blip)
        // we take it back; if someone else has it we stay standby.
        retryAt = now + min(retryInterval, 1_000_000_000)
        return [.stepDown(reason: reason)]
    }
}
