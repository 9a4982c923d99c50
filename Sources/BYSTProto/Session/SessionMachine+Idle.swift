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

extension LinkState {
    // These are `LinkState`'s, not the machine's: a non-mutating machine method handed
    // `&links.values[i]` gets a copy of the whole machine as `self` (the exclusivity rules),
    // and the link table, then shared, is copied on the next write: once per record.

    /// Whether the link is idle at `now`: records written but not yet dated count as traffic,
    /// and a link whose writes the peer has not confirmed (§5.3) is not idle.
    func isIdle(at now: Nanoseconds, deadLink: Nanoseconds) -> Bool {
        idleKeepalive && !wroteRecords && !writesUnconfirmed && now >= lastActivity &+ deadLink
    }

    /// When the link counts as dead unless a record arrives before (retiring aside).
    func deadAt(now: Nanoseconds, deadLink: Nanoseconds, idleKeepalive idleInterval: Nanoseconds) -> Nanoseconds {
        isIdle(at: now, deadLink: deadLink)
            ? lastReceived &+ idleInterval &+ deadLink
            : max(lastReceived, activeSince) &+ deadLink
    }

    /// Records other than pings, pongs and the instance crossed the link at `now`; `wasIdle`:
    /// the link was idle until then, so the dead-link time counts from now.
    mutating func noteTraffic(now: Nanoseconds, wasIdle: Bool) {
        if wasIdle { activeSince = now }
        lastActivity = max(lastActivity, now)
    }

    /// Records that arrived on the link at `now` carried traffic.
    mutating func noteArrivedTraffic(now: Nanoseconds, deadLink: Nanoseconds) {
        settleWrites(now: now, deadLink: deadLink)
        noteTraffic(now: now, wasIdle: isIdle(at: now, deadLink: deadLink))
    }

    /// Dates the records `writePayload` wrote on the link since the machine last had the time.
    mutating func settleWrites(now: Nanoseconds, deadLink: Nanoseconds) {
        guard wroteRecords else { return }
        wroteRecords = false
        let wasIdle = idleKeepalive && !unconfirmedBeforeWrites && now >= lastActivity &+ deadLink
        noteTraffic(now: now, wasIdle: wasIdle)
    }
}

extension SessionMachine {
    /// Packets the runtime wrote on `link` on its own (the data plane), seen at `now`: they
    /// count as traffic, and want a ping that confirms the link carries them.
    public mutating func noteWritten(on link: LinkID, now: Nanoseconds) {
        clock = max(clock, now)
        guard let index = links.index(forKey: link) else { return }
        let keepalive = config.keepaliveInterval.nanoseconds, deadLink = deadLinkNanoseconds
        links.values[index].wroteTraffic(keepaliveInterval: keepalive)
        links.values[index].settleWrites(now: now, deadLink: deadLink)
    }

    /// Whether `link` is idle now: the runtime asks to hear at once when traffic the machine
    /// does not see (packets a data plane carries) ends it.
    public func linkIsIdle(_ link: LinkID, now: Nanoseconds) -> Bool {
        links[link].map { $0.isIdle(at: now, deadLink: deadLinkNanoseconds) } ?? false
    }
}
