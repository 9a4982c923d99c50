// What a reload changes, worked out from values alone — the running config, the new config
// and the key store — so a pool thread does it: comparing a hub's 10,000 peers takes tens
// of milliseconds, which the event loop must not be held for. The loop then applies the
// plan (Node+Reload.swift).
import BYSTProto

struct ReloadPlan: Sendable {
    enum Entry: Sendable {
        /// The running peer at `index` (of the running config's peers) stays, with these keys
        /// (the same as now, or rotated).
        case kept(index: Int, key: PreSharedKey, nextKey: PreSharedKey?)
        /// A new peer, or one whose settings changed (then `replacing` its running namesake).
        case started(PeerConfig, key: PreSharedKey, nextKey: PreSharedKey?, replacing: Int?)
    }

    let config: NodeConfig
    /// One per peer of the new config, in its order.
    let entries: [Entry]
    /// Running peers that go (removed, or replaced by a `started` namesake), by index.
    let retired: [Int]

    /// The plan from `running` to `new` with `keys`, or why it cannot be applied (nothing
    /// may change then).
    init(running: NodeConfig, new: NodeConfig, keys: KeyStore) throws(ReloadError) {
        if let field = Self.restartOnlyDifference(running, new) {
            throw ReloadError(description: "\(field) changed: that needs a restart (nothing was changed)")
        }
        var runningIndex: [String: Int] = [:]
        runningIndex.reserveCapacity(running.peers.count)
        for (index, peer) in running.peers.enumerated() where runningIndex[peer.name] == nil { runningIndex[peer.name] = index }

        var entries: [Entry] = []
        entries.reserveCapacity(new.peers.count)
        var kept = [Bool](repeating: false, count: running.peers.count)
        // Key ids must stay unique with the new keys in place.
        var owners: [KeyID: String] = [:]
        owners.reserveCapacity(new.peers.count)
        for peer in new.peers {
            guard let (key, nextKey) = keys.keys(named: peer.key) else {
                throw ReloadError(description: "peer '\(peer.name)': key '\(peer.key)' is not in the key store \(keys.path)")
            }
            for id in [key.id] + (nextKey.map { [$0.id] } ?? []) {
                if let other = owners[id], other != peer.name {
                    throw ReloadError(description: "peers '\(other)' and '\(peer.name)' use the same key: give each peer its own")
                }
                owners[id] = peer.name
            }
            let namesake = runningIndex[peer.name]
            if let index = namesake, running.peers[index] == peer {
                entries.append(.kept(index: index, key: key, nextKey: nextKey))
                kept[index] = true
            } else {
                entries.append(.started(peer, key: key, nextKey: nextKey, replacing: namesake))
            }
        }
        config = new
        self.entries = entries
        retired = kept.indices.filter { !kept[$0] }
    }

    /// The first setting that only a restart can change, if any differs.
    static func restartOnlyDifference(_ old: NodeConfig, _ new: NodeConfig) -> String? {
        if old.name != new.name { return "[node] name" }
        if old.listen != new.listen { return "[node] listen" }
        if old.http != new.http { return "[node] HTTP listeners or TLS settings" }
        if old.controlSocket != new.controlSocket { return "[node] control_socket" }
        if old.metricsListen != new.metricsListen { return "[node] metrics_listen" }
        if old.metricsPeers != new.metricsPeers { return "[node] metrics_peers" }
        if old.keyStore != new.keyStore { return "[node] key_store" }
        if old.sessionLinger != new.sessionLinger || old.keepaliveInterval != new.keepaliveInterval
            || old.deadLinkTimeout != new.deadLinkTimeout || old.idleKeepaliveInterval != new.idleKeepaliveInterval { return "[node] session timing" }
        if old.maxRecordPayload != new.maxRecordPayload { return "[node] max_record_payload" }
        if old.tun != new.tun { return "[tun]" }
        if old.registry != new.registry { return "[node] registry or its registry_* keys" }
        if old.ha != new.ha { return "[ha]" }
        if old.limits != new.limits { return "[limits]" }
        return nil
    }
}
