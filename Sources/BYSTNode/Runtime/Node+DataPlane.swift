import BYSTProto

extension Node {
    func nextDataPlaneKey() -> UInt64 {
        dataPlaneKeys += 1
        return dataPlaneKeys
    }

    /// Tells the data plane the routing table and which of its links each peer's packets take
    /// (after any change to links, sessions or peers). Posted in order with the links' payloads.
    func publishDataPlaneRoutes() {
        guard let dataPlane else { return }
        var table = DataPlaneRoutes()
        for (index, peer) in peers.enumerated() {
            for prefix in peer.config.allowedIPs { table.routes.insert(prefix, peer: index) }
            let current = peer.sessionForNewStream()
            var entry = DataPlaneRoutes.Peer(sendLinks: [], allLinks: [],
                                             takesOffloadPackets: current?.peerTakesOffloadPackets ?? false)
            for session in peer.sessions {
                for id in session.links.keys.sorted() {
                    guard let link = session.links[id], let plane = link.plane, link.isEstablished else { continue }
                    entry.allLinks.append(plane.key)
                    if session === current, !session.inspect({ $0.isRetiring(id) }) { entry.sendLinks.append(plane.key) }
                }
            }
            table.append(entry)
        }
        dataPlane.post(.routes(table))
    }

    /// The plane's TUN drops since the last scrape, into `byst_packets_dropped_total`.
    func foldDataPlaneDrops() {
        guard let dataPlane else { return }
        let now = dataPlane.tunCounters
        let was = dataPlaneDropsFolded
        dataPlaneDropsFolded = now
        for (reason, count) in [(PacketDropReason.malformed, now.dropped_malformed &- was.dropped_malformed),
                                (.spoofedSource, now.dropped_spoofed_source &- was.dropped_spoofed_source),
                                (.tunWrite, now.dropped_tun_write &- was.dropped_tun_write),
                                (.linkScoped, now.dropped_link_scoped &- was.dropped_link_scoped)] where count > 0 {
            metrics.packetDropped(reason, count: Int(count))
        }
    }
}
