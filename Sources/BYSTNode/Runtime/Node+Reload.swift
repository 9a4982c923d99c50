// Config reload (SIGHUP, `byst reload`): the new file and key store are read and checked
// first; only then is anything changed, and only what differs:
//
//   peer added ─▶ new PeerRuntime, dials          peer removed ─▶ go-away, links closed
//   only its keys changed ─▶ links re-handshake (recycled), sessions and streams stay
//   other settings of a peer changed ─▶ that peer starts over (its streams end)
//   [[forward]] added / removed / changed ─▶ listener bound / closed / rebound
//   unchanged peers and their links ─▶ untouched
//
// Node-level settings ([node], [tun], [limits]) need a restart; a reload that changes them is refused.
import BYSTProto
import NIOCore
import NIOPosix
import Tun

public struct ReloadError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

extension Node {
    /// Reads the config file and key store again and applies the difference: a one-line
    /// summary, or (changing nothing) the `ReloadError` saying why not. Reading and checking
    /// run on a thread pool — a hub's file of thousands of peers takes a while, and the event
    /// loop keeps every link's timing meanwhile; only the difference is applied on the loop.
    func reloadFromDisk() -> EventLoopFuture<Result<String, ReloadError>> {
        guard let configPath else {
            return eventLoop.makeSucceededFuture(.failure(ReloadError(description: "this node was not started from a config file")))
        }
        let node = NIOLoopBound(self, eventLoop: eventLoop)
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { () -> Result<(NodeConfig, KeyStore), ReloadError> in
            Self.readConfigAndKeys(configPath)
        }.map { read in
            read.flatMap { config, keys in
                Result { () throws(ReloadError) in try node.value.reload(config, keys: keys) }
            }
        }.recover { error in .failure(ReloadError(description: "\(error)")) }
    }

    /// The config file at `path` and the key store it names, checked.
    static func readConfigAndKeys(_ path: String) -> Result<(NodeConfig, KeyStore), ReloadError> {
        let config: NodeConfig
        do { config = try NodeConfig.load(path: path) } catch { return .failure(ReloadError(description: error.description)) }
        do { return .success((config, try KeyStore.load(path: config.keyStore))) } catch {
            return .failure(ReloadError(description: error.description))
        }
    }

    func reload(_ newConfig: NodeConfig, keys: KeyStore) throws(ReloadError) -> String {
        if let field = Self.restartOnlyDifference(config, newConfig) {
            throw ReloadError(description: "\(field) changed: that needs a restart (nothing was changed)")
        }
        // Build everything new before touching anything running.
        let oldByName = Dictionary(uniqueKeysWithValues: peers.map { ($0.config.name, $0) })
        var next: [PeerRuntime] = []
        var created: [PeerRuntime] = []
        var rekeyed: [(PeerRuntime, PreSharedKey, PreSharedKey?)] = []
        for peerConfig in newConfig.peers {
            guard let (key, nextKey) = keys.keys(named: peerConfig.key) else {
                throw ReloadError(description: "peer '\(peerConfig.name)': key '\(peerConfig.key)' is not in the key store \(keys.path)")
            }
            if let old = oldByName[peerConfig.name], old.config == peerConfig {
                next.append(old)
                if old.key.id != key.id || old.nextKey?.id != nextKey?.id { rekeyed.append((old, key, nextKey)) }
                continue
            }
            do {
                let peer = try PeerRuntime(config: peerConfig, key: key, nextKey: nextKey, node: self)
                next.append(peer)
                created.append(peer)
            } catch {
                throw ReloadError(description: error.description)
            }
        }
        // Key ids must stay unique with the new keys in place.
        var ids: [KeyID: String] = [:]
        let newKeyIDs = Dictionary(rekeyed.map { (ObjectIdentifier($0.0), [$0.1.id] + ($0.2.map { [$0.id] } ?? [])) }) { first, _ in first }
        for peer in next {
            let peerKeys = newKeyIDs[ObjectIdentifier(peer)] ?? peer.keyIDs
            for id in peerKeys {
                if let other = ids[id], other != peer.config.name {
                    throw ReloadError(description: "peers '\(other)' and '\(peer.config.name)' use the same key: give each peer its own")
                }
                ids[id] = peer.config.name
            }
        }
        let kept = Set(next.map(ObjectIdentifier.init))
        let removed = peers.filter { !kept.contains(ObjectIdentifier($0)) }
        let oldForwards = config.forwards

        // Apply.
        config = newConfig
        for peer in removed { retire(peer) }
        peers = next
        for (peer, key, nextKey) in rekeyed { peer.updateKeys(current: key, next: nextKey) }
        do { peersByKeyID = try Self.index(peers) } catch { logger.error("reload: \(error)") }
        for peer in created { peer.startDialing() }
        updateTunRoutes()
        if config.ha != nil { closeUnservedLinks("reload: this gateway is not active for the peer's HA port") }
        registryServer?.configChanged()
        let forwards = reloadForwards(old: oldForwards, new: newConfig.forwards)

        var summary: [String] = []
        let replaced = created.filter { oldByName[$0.config.name] != nil }.map(\.config.name)
        let added = created.filter { oldByName[$0.config.name] == nil }.map(\.config.name)
        let replacedNames = Set(replaced)
        let gone = removed.map(\.config.name).filter { !replacedNames.contains($0) }
        if !added.isEmpty { summary.append("added \(added.joined(separator: ", "))") }
        if !gone.isEmpty { summary.append("removed \(gone.joined(separator: ", "))") }
        if !replaced.isEmpty { summary.append("restarted \(replaced.joined(separator: ", ")) (settings changed)") }
        if !rekeyed.isEmpty { summary.append("new keys for \(rekeyed.map(\.0.config.name).joined(separator: ", "))") }
        if !forwards.isEmpty { summary.append(forwards) }
        let text = summary.isEmpty ? "no changes" : summary.joined(separator: "; ")
        logger.info("config reloaded: \(text)")
        return text
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

    /// A removed (or restarted) peer: tell it, stop dialing, close its links shortly after.
    /// The peer is held meanwhile and for `retiredPeerHold` after: its sessions, links and
    /// slots refer to it (unowned) while they close, and a dial in flight answers within 10 s.
    private func retire(_ peer: PeerRuntime) {
        peer.shutdown()
        retiredPeers.append(peer)
        let links = peer.sessions.flatMap { $0.links.values }
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(200)) {
            for link in links { link.close() }
        }
        eventLoop.assumeIsolated().scheduleTask(in: Self.retiredPeerHold) { [self] in
            retiredPeers.removeAll { $0 === peer }
        }
    }

    static let retiredPeerHold: TimeAmount = .seconds(15)

    private func updateTunRoutes() {
        guard tunDevice != nil else { return }
        publishDataPlaneRoutes(peersChanged: true)
        syncRoutes(context: "reload")
    }

    /// Closes forwards that went away or changed and binds the new ones; a summary or "".
    private func reloadForwards(old: [ForwardConfig], new: [ForwardConfig]) -> String {
        let oldByListen = Dictionary(uniqueKeysWithValues: old.map { ($0.listen, $0) })
        let newByListen = Dictionary(uniqueKeysWithValues: new.map { ($0.listen, $0) })
        var closed = 0
        for forward in old where newByListen[forward.listen] != forward {
            forwardChannels.removeValue(forKey: forward.listen)?.close(promise: nil)
            closed += 1
        }
        let opening = new.filter { oldByListen[$0.listen] != $0 }
        for forward in opening {
            // A listener closed just above frees its port once its close completes.
            eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { [self] in
                startForward(forward).assumeIsolated().whenFailure { [self] error in
                    logger.error("reload: forward \(forward.listen): \(error)")
                }
            }
        }
        guard closed + opening.count > 0 else { return "" }
        return "forwards: \(opening.count) bound, \(closed) closed"
    }
}
