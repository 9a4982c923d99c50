import BYSTProto

/// What `byst status --json` prints (README "Status"): one object per node.
struct StatusReport: Codable, Sendable {
    struct Link: Codable, Sendable {
        var id: Int
        var index: Int
        var remote: String
        /// `byst`, `raw`, `connect`, `duplex`, `split` or `websocket` (LinkHandler.transport).
        var transport: String? = nil
        /// The `[[peer]] uplinks` entry a dialed link leaves through.
        var uplink: String? = nil
        var state: String
        var rtt_ms: Double?
        var bytes_in: UInt64
        var bytes_out: UInt64
        /// The key the link authenticated with (changes during a key rotation).
        var key_id: String?
        var streams: Int
        /// What this side compresses on the link (PROTOCOL.md §4.2): "off", "streams", "all".
        var compression: String? = nil
        /// Records sent with a zstd payload, and as they were.
        var records_compressed: UInt64? = nil
        var records_uncompressed: UInt64? = nil
        /// Compression runs (incompressible data backs off: most records are not tried).
        var compression_attempts: UInt64? = nil
        /// Sent record payload bytes after / before compression (1 = nothing saved).
        var compression_ratio: Double? = nil
        /// Compressed records received.
        var records_decompressed: UInt64? = nil
        /// Both sides offered `sequencedPackets` (PROTOCOL.md §5.4, "Packet striping"): our
        /// packets are striped over the link when our `packet_striping` is on for the peer, and
        /// the peer's sequenced packets put back in order by the plane that holds it.
        var sequenced_packets: Bool? = nil
    }

    struct Session: Codable, Sendable {
        var id: String
        var role: String
        var state: String
        var links: [Link]
        var streams: Int
    }

    /// The latest dialed link that failed before its handshake (DialFailureLog.last). Kept
    /// after links come up again (`failing` false then), so a flapping peer shows its cause.
    struct LastError: Codable, Sendable {
        /// The cause as the log's `dial failed: …` line gives it.
        var cause: String
        /// RFC 3339 UTC with milliseconds.
        var at: String
        var seconds_ago: Double
        /// Failed attempts in a row up to it.
        var attempts: Int
        /// No link came up since.
        var failing: Bool
    }

    struct Peer: Codable, Sendable {
        var name: String
        var endpoint: String?
        /// The proxy our links to the peer go through, `host:port (forward|connect)`; nil: none.
        var proxy: String? = nil
        var configured_links: Int
        var reconnects: Int
        var last_error: LastError? = nil
        var sessions: [Session]
    }

    struct Tun: Codable, Sendable {
        var name: String
        var counters: TunCounters
        var dropped_queue_full: UInt64
        /// Batches of packets the data plane read for the event loop's links and dropped
        /// because the loop had fallen behind.
        var dropped_loop_batches: UInt64
        /// The links the data planes own now, in all and per plane (one plane per TUN queue).
        var data_plane_links: Int
        var plane_links: [Int]
    }

    /// `[node] registry`: the backend and whether we are connected to it.
    struct Registry: Codable, Sendable {
        var service: String
        var connected: Bool
        /// How long our ports stay surely ours without another renewal (nil before the first).
        var lease_valid_ms: Int?
    }

    /// `[ha]`: our role for the port and how it got there.
    struct HA: Codable, Sendable {
        struct Transition: Codable, Sendable {
            var role: String
            /// RFC 3339 UTC with milliseconds.
            var at: String
            var reason: String
        }
        var port: String
        var role: String
        var owner: String?
        var transitions: Int
        var recent: [Transition]
    }

    /// `byst registry serve`: clients connected and ports registered.
    struct RegistryServer: Codable, Sendable {
        var clients: Int
        var ports: Int
        var requests: UInt64
        /// Port claims refused because the client may not own the port (`[[peer]] ports`).
        var denied: UInt64
    }

    var node: String
    var uptime_seconds: Double
    var handshake_failures: Int
    var tun: Tun?
    var peers: [Peer]
    var registry: Registry? = nil
    var ha: HA? = nil
    var registry_server: RegistryServer? = nil
}

extension Node {
    func status() -> StatusReport {
        let now = Clocks.monotonic()
        var planeLinks = [Int](repeating: 0, count: dataPlanes.count)
        for link in peers.flatMap(\.sessions).flatMap(\.links.values) where link.isEstablished {
            if let plane = link.plane { planeLinks[plane.owner.index] += 1 }
        }
        return StatusReport(
            node: config.name,
            uptime_seconds: Double(now - startedAt) / 1e9,
            handshake_failures: handshakeFailures + acceptGate.refused,
            tun: tunDevice.map { [planeLinks] device in
                StatusReport.Tun(
                    name: device.name, counters: tunCounters,
                    dropped_queue_full: peers.flatMap(\.sessions).reduce(0) { $0 + $1.machine.packetsDropped },
                    dropped_loop_batches: loopBatchesDropped,
                    data_plane_links: planeLinks.reduce(0, +), plane_links: planeLinks)
            },
            peers: peers.map { peer in
                StatusReport.Peer(
                    name: peer.config.name, endpoint: peer.config.endpoint?.description, proxy: peer.proxyDescription,
                    configured_links: peer.config.links, reconnects: peer.reconnects, last_error: peer.lastErrorStatus(),
                    sessions: peer.sessions.map { $0.status() })
            },
            registry: registryBackend.map { backend in
                StatusReport.Registry(
                    service: backend.description, connected: backend.isConnected,
                    lease_valid_ms: backend.validUntil.map { Int((Int64($0) - Int64(now)) / 1_000_000) })
            },
            ha: haController.map { controller in
                StatusReport.HA(
                    port: controller.config.port, role: controller.state.rawValue, owner: controller.owner?.node,
                    transitions: controller.transitionCount,
                    recent: controller.transitions.suffix(8).map {
                        .init(role: $0.role.rawValue, at: JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64($0.at)), reason: $0.reason)
                    })
            },
            registry_server: registryServer.map { server in
                StatusReport.RegistryServer(clients: server.clientCount, ports: server.registry.portCount, requests: server.requests,
                                            denied: server.denied)
            })
    }
}

extension SessionRuntime {
    func status() -> StatusReport.Session {
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
                sequenced_packets: handler.negotiatedFeatures.contains(.sequencedPackets))
        }
        return StatusReport.Session(
            id: sessionID.hexString, role: machine.role == .initiator ? "initiator" : "responder",
            state: links.isEmpty ? "lingering" : "active", links: links, streams: machine.streamCount)
    }
}

extension PeerRuntime {
    /// `host:port (mode)` of the proxy on the way to where we dial now, nil without one.
    var proxyDescription: String? {
        guard let http = dialTarget?.httpEndpoint, let proxy = config.http.proxy(for: http) else { return nil }
        return "\(proxy.address) (\(proxy.mode.rawValue))"
    }

    func lastErrorStatus() -> StatusReport.LastError? {
        guard let last = dialFailures.last else { return nil }
        let now = Clocks.wall()
        return StatusReport.LastError(
            cause: last.cause.description, at: JSONLogHandler.rfc3339(nanosecondsSinceEpoch: Int64(clamping: last.at)),
            seconds_ago: now > last.at ? (Double(now - last.at) / 1e8).rounded() / 10 : 0,
            attempts: last.attempts, failing: dialFailures.isFailing)
    }
}
