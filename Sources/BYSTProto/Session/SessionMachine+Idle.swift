// Idle links (PROTOCOL.md §5.5, "Idle links"): when both sides offered
// `LinkFeatures.idleKeepalive`, a link that carried nothing but pings and pongs for a
// dead-link timeout is kept alive at the idle interval instead of the keepalive interval, and
// may stay silent for the idle interval plus the dead-link timeout. A hub with thousands of
// idle branches then handles one ping per link and idle interval, not one per second.
//
//   active ─(no traffic for dead-link timeout)─▶ idle ─(traffic either way)─▶ active
//
// The moment a link stops being idle the dead-link time counts from then: a link that went
// dead while idle is found within one dead-link timeout of the first traffic it fails to carry.

extension SessionMachine {
    /// Whether `link` is idle at `now`: records written but not yet dated count as traffic,
    /// and a link whose writes the peer has not confirmed (§5.3) is not idle.
    func isIdle(_ link: LinkState, at now: Nanoseconds) -> Bool {
        link.idleKeepalive && !link.wroteRecords && !link.writesUnconfirmed && now >= link.lastActivity &+ deadLinkNanoseconds
    }

    /// When `link` counts as dead unless a record arrives before (retiring aside).
    func deadAt(_ link: LinkState, now: Nanoseconds) -> Nanoseconds {
        isIdle(link, at: now)
            ? link.lastReceived &+ idleKeepaliveNanoseconds &+ deadLinkNanoseconds
            : max(link.lastReceived, link.activeSince) &+ deadLinkNanoseconds
    }

    /// Records other than pings, pongs and the instance crossed `link` at `now`; `wasIdle`:
    /// the link was idle until then, so the dead-link time counts from now.
    func noteTraffic(_ link: inout LinkState, now: Nanoseconds, wasIdle: Bool) {
        if wasIdle { link.activeSince = now }
        link.lastActivity = max(link.lastActivity, now)
    }

    /// Records that arrived on `link` at `now` carried traffic.
    func noteArrivedTraffic(_ link: inout LinkState, now: Nanoseconds) {
        settleWrites(&link, now: now)
        noteTraffic(&link, now: now, wasIdle: isIdle(link, at: now))
    }

    /// Dates the records `writePayload` wrote on `link` since the machine last had the time.
    func settleWrites(_ link: inout LinkState, now: Nanoseconds) {
        guard link.wroteRecords else { return }
        link.wroteRecords = false
        let wasIdle = link.idleKeepalive && !link.unconfirmedBeforeWrites && now >= link.lastActivity &+ deadLinkNanoseconds
        noteTraffic(&link, now: now, wasIdle: wasIdle)
    }

    /// Packets the runtime wrote on `link` on its own (the data plane), seen at `now`: they
    /// count as traffic, and want a ping that confirms the link carries them.
    public mutating func noteWritten(on link: LinkID, now: Nanoseconds) {
        clock = max(clock, now)
        guard let index = links.index(forKey: link) else { return }
        links.values[index].wroteTraffic(keepaliveInterval: config.keepaliveInterval.nanoseconds)
        settleWrites(&links.values[index], now: now)
    }

    /// Whether `link` is idle now: the runtime asks to hear at once when traffic the machine
    /// does not see (packets a data plane carries) ends it.
    public func linkIsIdle(_ link: LinkID, now: Nanoseconds) -> Bool {
        links[link].map { isIdle($0, at: now) } ?? false
    }
}
