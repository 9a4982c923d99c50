// The node's state as a StatusReport (what the control socket's "status" answers).
import BYSTProto

/// What a status request asks for: everything, the totals only, or one peer.
enum StatusView: Equatable, Sendable {
    case full
    case summary
    case peer(String)

    /// The control socket's command: `status`, `status summary`, `status peer NAME`.
    init?(command: String) {
        let words = command.split(separator: " ", omittingEmptySubsequences: true)
        guard words.first == "status" else { return nil }
        switch words.count {
        case 1: self = .full
        case 2 where words[1] == "summary": self = .summary
        case 3 where words[1] == "peer": self = .peer(String(words[2]))
        default: return nil
        }
    }

    var command: String {
        switch self {
        case .full: "status"
        case .summary: "status summary"
        case .peer(let name): "status peer \(name)"
        }
    }
}

/// The report's totals (summary, links per data plane, packets dropped on full queues),
/// added up peer by peer as the slices read them: no pass over every peer in one loop tick.
struct StatusTotals {
    var summary: StatusReport.Summary
    var planeLinks: [Int]
    var droppedQueueFull: UInt64 = 0

    init(peers: Int, planes: Int) {
        summary = StatusReport.Summary(peers: peers, peers_up: 0, links: 0, sessions: 0, streams: 0,
                                       received_bytes: 0, sent_bytes: 0, failing_peers: 0, failing: [])
        planeLinks = [Int](repeating: 0, count: planes)
    }

    mutating func add(_ peer: PeerRuntime) {
        var links = 0
        peer.forEachSession { session in
            links += session.links.count
            summary.sessions += 1
            summary.streams += session.machine.streamCount
            droppedQueueFull += session.machine.packetsDropped
            for link in session.links.values where link.isEstablished {
                if let plane = link.plane { planeLinks[plane.owner.index] += 1 }
            }
        }
        if links > 0 { summary.peers_up += 1 }
        summary.links += links
        let total = peer.totalBytes()
        summary.received_bytes += total.received
        summary.sent_bytes += total.sent
        if peer.dialFailures.isFailing {
            summary.failing_peers += 1
            if summary.failing.count < Node.failingPeersListed { summary.failing.append(peer.config.name) }
        }
    }
}

extension Node {
    /// Everything: the node, its totals and every peer, in one go (tests; the control socket
    /// uses the sliced `status(_:reply:)`).
    func status() -> StatusReport {
        var totals = StatusTotals(peers: peers.count, planes: tun?.planes.count ?? 0)
        for peer in peers { totals.add(peer) }
        return status(peers: peers.map { $0.status() }, totals: totals)
    }

    /// The status `view` asks for, to `reply`; nil for a peer that is not configured. Every
    /// view reads the peers a slice per loop tick (`mapSliced`): the totals need them all.
    func status(_ view: StatusView, reply: @escaping (StatusReport?) -> Void) {
        var totals = StatusTotals(peers: peers.count, planes: tun?.planes.count ?? 0)
        switch view {
        case .full:
            mapSliced(peers, { peer in
                totals.add(peer)
                return peer.status()
            }) { [self] in reply(status(peers: $0, totals: totals)) }
        case .summary:
            mapSliced(peers, { totals.add($0) }) { [self] _ in reply(status(peers: [], totals: totals)) }
        case .peer(let name):
            guard let chosen = peer(named: name) else { return reply(nil) }
            mapSliced(peers, { totals.add($0) }) { [self] _ in reply(status(peers: [chosen.status()], totals: totals)) }
        }
    }

    /// Failing peers a summary names (it counts them all).
    static let failingPeersListed = 20

    private func status(peers peerReports: [StatusReport.Peer], totals: StatusTotals) -> StatusReport {
        let now = Clocks.monotonic()
        var report = StatusReport(
            node: config.name,
            uptime_seconds: Double(now - startedAt) / 1e9,
            handshake_failures: handshakeFailures + acceptGate.refused,
            tun: tun.map { tun in
                StatusReport.Tun(
                    name: tun.device.name, counters: tun.counters,
                    dropped_queue_full: totals.droppedQueueFull,
                    dropped_loop_batches: tun.loopBatchesDropped,
                    data_plane_links: totals.planeLinks.reduce(0, +), plane_links: totals.planeLinks)
            },
            peers: peerReports,
            registry: ha.map(\.backend).map { backend in
                StatusReport.Registry(
                    service: backend.description, connected: backend.isConnected,
                    lease_valid_ms: backend.validUntil.map { Int((Int64($0) - Int64(now)) / 1_000_000) })
            },
            ha: ha?.controller.map { controller in
                StatusReport.HA(ports: controller.ports.map { port in
                    StatusReport.HA.Port(
                        port: port.name, preferred: port.preferred, role: port.state.rawValue, owner: port.owner?.node,
                        transitions: port.transitionCount,
                        recent: port.transitions.suffix(8).map {
                            .init(role: $0.role.rawValue, at: JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64($0.at)), reason: $0.reason)
                        })
                })
            },
            registry_server: registryServer.map { server in
                StatusReport.RegistryServer(clients: server.clientCount, ports: server.registry.portCount, requests: server.requests,
                                            denied: server.denied)
            })
        report.summary = totals.summary
        return report
    }
}

extension SessionRuntime {
    func status() -> StatusReport.Session {
        let now = Clocks.monotonic()
        let machineLinks = Dictionary(uniqueKeysWithValues: machine.linkStatus.map { ($0.id, $0) })
        let links = self.links.keys.sorted().compactMap { id -> StatusReport.Link? in
            guard let handler = self.links[id] else { return nil }
            let state = machineLinks[id]
            return StatusReport.Link(
                id: id.rawValue, index: Int(handler.linkIndex), remote: handler.remoteDescription, transport: handler.transport,
                uplink: handler.slot?.uplink?.name, state: "up",
                rtt_ms: state?.rtt.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1e3 },
                bytes_in: handler.wireBytesIn, bytes_out: handler.wireBytesOut, key_id: handler.keyID?.description, streams: state?.streams ?? 0,
                compression: handler.compressionScope.rawValue,
                records_compressed: handler.compressionCounters.recordsCompressed,
                records_uncompressed: handler.compressionCounters.recordsUncompressed,
                compression_attempts: handler.compressionCounters.attempts,
                compression_ratio: (handler.compressionCounters.ratio * 10_000).rounded() / 10_000,
                records_decompressed: handler.compressionCounters.recordsDecompressed,
                handshake_seconds_ago: handler.establishedAt.map { PeerRuntime.secondsBetween($0, now) },
                sequenced_packets: handler.negotiatedFeatures.contains(.sequencedPackets))
        }
        return StatusReport.Session(
            id: sessionID.hexString, role: machine.role == .initiator ? "initiator" : "responder",
            state: links.isEmpty ? "lingering" : "active", links: links, streams: machine.streamCount)
    }
}

extension PeerRuntime {
    func status() -> StatusReport.Peer {
        let sessions = hasSessions ? self.sessions.map { $0.status() } : []
        let total = totalBytes()
        let wall = Clocks.wall()
        let rate = traffic.rate
        return StatusReport.Peer(
            name: config.name, endpoint: config.endpoint?.description, proxy: proxyDescription,
            configured_links: config.links, reconnects: reconnects, last_error: lastErrorStatus(),
            last_link_loss: lastLinkLoss.map { loss in
                StatusReport.LinkLoss(
                    index: Int(loss.index), transport: loss.transport, cause: loss.cause,
                    at: JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64(clamping: loss.at)),
                    seconds_ago: Self.secondsBetween(loss.at, wall), losses: linkLosses)
            },
            sessions: sessions,
            latest_handshake: latestHandshake.map { JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64(clamping: $0)) },
            latest_handshake_seconds_ago: latestHandshake.map { Self.secondsBetween($0, wall) },
            links_up: sessions.reduce(0) { $0 + $1.links.count }, received_bytes: total.received, sent_bytes: total.sent,
            received_bytes_per_second: rate.map { $0.bytesInPerSecond.rounded() }, sent_bytes_per_second: rate.map { $0.bytesOutPerSecond.rounded() },
            rate_seconds: rate.map { ($0.seconds * 10).rounded() / 10 })
    }

    /// Seconds from `earlier` to `later` (nanoseconds), to a tenth; 0 if the clock went back.
    static func secondsBetween(_ earlier: UInt64, _ later: UInt64) -> Double {
        later > earlier ? (Double(later - earlier) / 1e8).rounded() / 10 : 0
    }

    /// `host:port (mode)` of the proxy on the way to where we dial now, nil without one.
    var proxyDescription: String? {
        guard let http = dialTarget?.httpEndpoint, let proxy = config.http.proxy(for: http) else { return nil }
        return "\(proxy.address) (\(proxy.mode.rawValue))"
    }

    func lastErrorStatus() -> StatusReport.LastError? {
        guard let last = dialFailures.last else { return nil }
        let now = Clocks.wall()
        let since = dialFailures.failingStartedAt
        return StatusReport.LastError(
            cause: last.cause.description, at: JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64(clamping: last.at)),
            seconds_ago: Self.secondsBetween(last.at, now),
            attempts: last.attempts, failing: dialFailures.isFailing,
            failing_since: since.map { JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64(clamping: $0)) },
            failing_seconds: since.map { Self.secondsBetween($0, now) })
    }
}
