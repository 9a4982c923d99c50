import Testing
@testable import BYSTProto

/// An HA gateway's role: it is active only while its confirmed lease runs, so it steps
/// down before the registry could hand the port to another gateway.
@Suite struct GatewayRoleTests {
    let ms: Nanoseconds = 1_000_000

    @Test func claimActivateAndStepDownWhenRenewalsStop() {
        var role = GatewayRole(retryInterval: .seconds(3))
        #expect(role.start(now: 0) == [.claim])
        role.renewed(validUntil: 2400 * ms)  // request sent at 0, lease 3 s, margin 600 ms
        #expect(role.claimResult(owned: true, now: 10 * ms) == [.activate])
        #expect(role.state == .active)
        #expect(role.nextDeadline == 2400 * ms)
        role.renewed(validUntil: 3150 * ms)
        #expect(role.tick(now: 2400 * ms).isEmpty)
        // The registry becomes unreachable: no more renewals. At validUntil we step down.
        #expect(role.tick(now: 3149 * ms).isEmpty)
        guard case .stepDown = role.tick(now: 3150 * ms).first else {
            Issue.record("expected a step-down at validUntil")
            return
        }
        #expect(role.state == .standby)
        // ... and try again within a second (the port may still be ours after a blip).
        #expect(role.tick(now: 4150 * ms) == [.claim])
    }

    @Test func standbyClaimsOnReleaseAndRetriesWhenTaken() {
        var role = GatewayRole(retryInterval: .seconds(3))
        _ = role.start(now: 0)
        role.renewed(validUntil: 2400 * ms)
        #expect(role.claimResult(owned: false, now: 5 * ms).isEmpty)
        #expect(role.state == .standby)
        #expect(role.ownerChanged(free: false, now: 100 * ms).isEmpty)
        #expect(role.ownerChanged(free: true, now: 200 * ms) == [.claim])
        #expect(role.claimResult(owned: false, now: 205 * ms).isEmpty)
        // A missed notice is covered by the retry timer.
        #expect(role.nextDeadline == 3205 * ms)
        #expect(role.tick(now: 3205 * ms) == [.claim])
    }

    @Test func anOwnedAnswerWithAnExpiredLeaseDoesNotActivate() {
        var role = GatewayRole(retryInterval: .seconds(3))
        _ = role.start(now: 0)
        role.renewed(validUntil: 1000 * ms)
        #expect(role.claimResult(owned: true, now: 1000 * ms).isEmpty)
        #expect(role.state == .standby)
    }

    @Test func lostPortStepsDownAtOnce() {
        var role = GatewayRole(retryInterval: .seconds(3))
        _ = role.start(now: 0)
        role.renewed(validUntil: 9000 * ms)
        _ = role.claimResult(owned: true, now: 0)
        guard case .stepDown = role.lost(now: 10 * ms).first else {
            Issue.record("expected a step-down")
            return
        }
        #expect(role.state == .standby)
    }

    // MARK: Registry session drops (the embedded registry's close grace)

    /// Active with a lease confirmed until 2400 ms (request sent at 0, lease 3 s).
    private func activeRole() -> GatewayRole {
        var role = GatewayRole(retryInterval: .seconds(3))
        _ = role.start(now: 0)
        role.renewed(validUntil: 2400 * ms, sentAt: 0)
        _ = role.claimResult(owned: true, now: 5 * ms)
        return role
    }

    @Test func aDroppedSessionNotBackInTimeStepsDownBeforeTheRegistryReleases() {
        var role = activeRole()
        role.registrySessionDropped(closeGrace: .milliseconds(300), now: 100 * ms)
        #expect(role.awaitingRelet)
        // The registry releases at 100 + 300 ms; we step down a third of the grace before.
        #expect(role.nextDeadline == 300 * ms)
        #expect(role.tick(now: 299 * ms).isEmpty)
        // An answer to a request sent before the drop proves nothing.
        role.renewed(validUntil: 2600 * ms, sentAt: 90 * ms)
        #expect(role.awaitingRelet)
        guard case .stepDown(let reason) = role.tick(now: 300 * ms).first else {
            Issue.record("expected a step-down 200 ms after the drop")
            return
        }
        #expect(reason.contains("close grace"))
        #expect(role.state == .standby)
        #expect(!role.awaitingRelet)
    }

    @Test func aDroppedSessionBackWithinTheGraceKeepsTheRoleWithoutAFlap() {
        var role = activeRole()
        role.registrySessionDropped(closeGrace: .milliseconds(300), now: 100 * ms)
        // Re-dialed; a keepalive sent at 220 ms is answered: the registry has us again.
        role.renewed(validUntil: 2620 * ms, sentAt: 220 * ms)
        #expect(!role.awaitingRelet)
        #expect(role.tick(now: 300 * ms).isEmpty)
        #expect(role.tick(now: 1000 * ms).isEmpty)
        #expect(role.state == .active)
        #expect(role.nextDeadline == 2620 * ms)
    }

    @Test func aRefusedRedialKeepsTheLeaseRule() {
        // The registry process is gone (kill -9): nothing there can give the port away.
        var role = activeRole()
        role.registrySessionDropped(closeGrace: .milliseconds(300), now: 100 * ms)
        role.registryStateGone(now: 210 * ms)
        #expect(!role.awaitingRelet)
        #expect(role.tick(now: 300 * ms).isEmpty)
        #expect(role.tick(now: 2399 * ms).isEmpty)
        #expect(role.state == .active)
        // A restarted registry lets us relet; if it does not answer, the lease decides.
        guard case .stepDown = role.tick(now: 2400 * ms).first else {
            Issue.record("expected the lease rule to step down at validUntil")
            return
        }
    }

    @Test func aDropWithoutACloseGraceOrWhileStandbyChangesNothing() {
        var role = activeRole()
        role.registrySessionDropped(closeGrace: .zero, now: 100 * ms)  // a registry that only counts leases
        #expect(!role.awaitingRelet)
        #expect(role.nextDeadline == 2400 * ms)
        var standby = GatewayRole(retryInterval: .seconds(3))
        _ = standby.start(now: 0)
        _ = standby.claimResult(owned: false, now: 5 * ms)
        standby.registrySessionDropped(closeGrace: .milliseconds(300), now: 100 * ms)
        #expect(!standby.awaitingRelet)
    }
}
