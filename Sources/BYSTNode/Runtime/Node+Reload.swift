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
//
// A hub's reload never holds the event loop long (docs/PERFORMANCE.md, "A hub for many
// branches"): reading, checking and comparing run on a pool thread (ReloadPlan); the loop
// makes the new peers a slice per tick, switches over in one tick (O(changed) but for the
// peer list itself and the route table), then retires the old peers a slice per tick.
import BYSTProto
import NIOCore
import NIOPosix
import Tun

public struct ReloadError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

extension Node {
    /// Peers made or retired per loop tick in a reload: each costs tens of microseconds.
    static let reloadPeersPerSlice = 100

    /// Reads the config file and key store again and applies the difference: a one-line
    /// summary, or (changing nothing) the `ReloadError` saying why not. One reload at a time:
    /// a plan is made against the running config, which only a reload changes.
    func reloadFromDisk() -> EventLoopFuture<Result<String, ReloadError>> {
        guard let configPath else {
            return eventLoop.makeSucceededFuture(.failure(ReloadError(description: "this node was not started from a config file")))
        }
        let promise = eventLoop.makePromise(of: Result<String, ReloadError>.self)
        let previous = reloadInProgress ?? eventLoop.makeSucceededVoidFuture()
        reloadInProgress = promise.futureResult.map { _ in }
        previous.assumeIsolated().whenComplete { [self] _ in
            plan(configPath).assumeIsolated().whenComplete { [self] planned in
                switch planned {
                case .success(.success(let plan)): apply(plan).cascade(to: promise)
                case .success(.failure(let error)): promise.succeed(.failure(error))
                case .failure(let error): promise.succeed(.failure(ReloadError(description: "\(error)")))
                }
            }
        }
        return promise.futureResult
    }

    /// The plan from the running config to the one at `path`, made on a pool thread.
    private func plan(_ path: String) -> EventLoopFuture<Result<ReloadPlan, ReloadError>> {
        let running = config
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { () -> Result<ReloadPlan, ReloadError> in
            Self.readConfigAndKeys(path).flatMap { new, keys in
                Result { () throws(ReloadError) in try ReloadPlan(running: running, new: new, keys: keys) }
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

    /// Makes the plan's new peers (a slice per tick; nothing running changes if one cannot be
    /// made), then switches over.
    private func apply(_ plan: ReloadPlan) -> EventLoopFuture<Result<String, ReloadError>> {
        let promise = eventLoop.makePromise(of: Result<String, ReloadError>.self)
        let starting = plan.entries.compactMap { entry -> (PeerConfig, PreSharedKey, PreSharedKey?)? in
            guard case .started(let peer, let key, let nextKey, _) = entry else { return nil }
            return (peer, key, nextKey)
        }
        mapSliced(starting, perSlice: Self.reloadPeersPerSlice, { [self] peer, key, nextKey in
            Result { () throws(PeerRuntime.SetupFailure) in try PeerRuntime(config: peer, key: key, nextKey: nextKey, node: self) }
        }) { [self] made in
            var created: [PeerRuntime] = []
            for result in made {
                switch result {
                case .success(let peer): created.append(peer)
                case .failure(let error): return promise.succeed(.failure(ReloadError(description: error.description)))
                }
            }
            promise.succeed(.success(switchOver(plan, created: created)))
        }
        return promise.futureResult
    }

    /// One tick: the new config, peer list, key index and routes in place; then the old peers
    /// retired and the new ones dialing, a slice per tick. The summary.
    private func switchOver(_ plan: ReloadPlan, created: [PeerRuntime]) -> String {
        let running = peers
        var next: [PeerRuntime] = []
        next.reserveCapacity(plan.entries.count)
        var rekeyed: [(PeerRuntime, PreSharedKey, PreSharedKey?)] = []
        var replaced: [String] = [], added: [String] = []
        var made = created.makeIterator()
        for entry in plan.entries {
            switch entry {
            case .kept(let index, let key, let nextKey):
                let peer = running[index]
                next.append(peer)
                if peer.key.id != key.id || peer.nextKey?.id != nextKey?.id { rekeyed.append((peer, key, nextKey)) }
            case .started(let config, _, _, let replacing):
                guard let peer = made.next() else { continue }
                next.append(peer)
                if replacing == nil { added.append(config.name) } else { replaced.append(config.name) }
            }
        }
        let retiring = plan.retired.map { running[$0] }
        let oldForwards = config.forwards

        // The key index changes only where peers or their keys do.
        for peer in retiring + rekeyed.map(\.0) {
            for id in peer.keyIDs where peersByKeyID[id] === peer { peersByKeyID[id] = nil }
        }
        config = plan.config
        peers = next
        for (peer, key, nextKey) in rekeyed { peer.updateKeys(current: key, next: nextKey) }
        for peer in rekeyed.map(\.0) + created {
            for id in peer.keyIDs { peersByKeyID[id] = peer }
        }
        updateTunRoutes()
        if config.ha != nil { closeUnservedLinks("reload: this gateway is not active for the peer's HA port") }
        registryServer?.configChanged()
        let forwardsChanged = forwards.reload(old: oldForwards, new: plan.config.forwards)
        // A replaced peer's old runtime stops dialing before its successor starts.
        let batches = stride(from: 0, to: retiring.count, by: Self.reloadPeersPerSlice).map {
            Array(retiring[$0..<min($0 + Self.reloadPeersPerSlice, retiring.count)])
        }
        mapSliced(batches, perSlice: 1, { [self] batch in retire(batch) }) { [self] _ in
            mapSliced(created, perSlice: Self.reloadPeersPerSlice, { $0.startDialing() }) { _ in }
        }

        var summary: [String] = []
        let replacedNames = Set(replaced)
        let gone = retiring.map(\.config.name).filter { !replacedNames.contains($0) }
        if !added.isEmpty { summary.append("added \(added.joined(separator: ", "))") }
        if !gone.isEmpty { summary.append("removed \(gone.joined(separator: ", "))") }
        if !replaced.isEmpty { summary.append("restarted \(replaced.joined(separator: ", ")) (settings changed)") }
        if !rekeyed.isEmpty { summary.append("new keys for \(rekeyed.map(\.0.config.name).joined(separator: ", "))") }
        if !forwardsChanged.isEmpty { summary.append(forwardsChanged) }
        let text = summary.isEmpty ? "no changes" : summary.joined(separator: "; ")
        logger.info("config reloaded: \(text)")
        return text
    }

    /// Removed (or restarted) peers: tell them (a go-away), stop dialing, close their links
    /// once that is written (`closeWhenFlushed`). They are held meanwhile and for
    /// `retiredPeerHold` after: their sessions, links and slots refer to them (unowned) while
    /// they close, and a dial in flight answers within 10 s.
    private func retire(_ batch: [PeerRuntime]) {
        for peer in batch { peer.shutdown() }
        retiredPeers.append(contentsOf: batch)
        let links = batch.flatMap { peer in peer.sessions.flatMap { $0.links.values } }
        _ = closeWhenFlushed(links)
        let released = Set(batch.map(ObjectIdentifier.init))
        eventLoop.assumeIsolated().scheduleTask(in: Self.retiredPeerHold) { [self] in
            retiredPeers.removeAll { released.contains(ObjectIdentifier($0)) }
        }
    }

    static let retiredPeerHold: TimeAmount = .seconds(15)

    private func updateTunRoutes() {
        guard let tun else { return }
        tun.rebuildRoutes()
        syncRoutes(context: "reload")
    }
}
