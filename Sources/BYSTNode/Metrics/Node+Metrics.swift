// Scrape time: the node's state ─▶ gauges ─▶ registry text ─▶ sorted families with # HELP.
import BYSTProto
import Prometheus

extension Node {
    /// A link whose handshake did not complete: counted in `byst status` (`handshake_failures`)
    /// and in `byst_handshake_failures_total{reason}`.
    func handshakeFailed(_ reason: HandshakeFailureReason) {
        handshakeFailures += 1
        metrics.handshakeFailed(reason)
    }

    /// The text exposition (format 0.0.4) of this node's metrics, gauges as of now, all on
    /// the event loop (tests; `GET /metrics` renders on a pool thread instead).
    func metricsExposition() -> String {
        MetricsExposition.render(refreshMetrics())
    }

    /// Brings the gauges up to date from the node's state (on the event loop, like everything
    /// that reads it) and returns the registry to render: rendering only reads the registry,
    /// which is thread-safe, so it can leave the loop.
    func refreshMetrics() -> PrometheusCollectorRegistry {
        applyMetrics(peers.map(metricsState))
    }

    /// `refreshMetrics`, reading the peers a slice per loop tick (`mapSliced`): a scrape of a
    /// hub with thousands of peers does not hold the loop long.
    func refreshMetrics(then done: @escaping (PrometheusCollectorRegistry) -> Void) {
        mapSliced(peers, metricsState) { [self] in done(applyMetrics($0)) }
    }

    private func metricsState(_ peer: PeerRuntime) -> (name: String, state: NodeMetrics.PeerState) {
        let sessions = peer.sessions
        var before: UInt64 = 0
        var after: UInt64 = 0
        var links = 0
        for session in sessions {
            links += session.links.count
            for link in session.links.values {
                link.foldPlaneCounters()
                if link.compressionScope != .off {
                    before += link.compressionCounters.bytesBefore
                    after += link.compressionCounters.bytesAfter
                }
            }
        }
        let state = NodeMetrics.PeerState(
            links: links, configuredLinks: peer.config.endpoint == nil ? 0 : peer.config.links, sessions: sessions.count,
            streams: sessions.reduce(0) { $0 + $1.machine.streamCount },
            compressionRatio: before > 0 ? Double(after) / Double(before) : nil)
        return (peer.config.name, state)
    }

    private func applyMetrics(_ states: [(name: String, state: NodeMetrics.PeerState)]) -> PrometheusCollectorRegistry {
        tun?.foldDrops(into: metrics)
        var uplinks: [String: [(name: String, state: UplinkState)]] = [:]
        for peer in peers where !peer.config.uplinks.isEmpty { uplinks[peer.config.name] = peer.uplinkStates() }
        metrics.update(uptimeSeconds: Double(Clocks.monotonic() - startedAt) / 1e9,
                       readerBatchesDropped: tun?.loopBatchesDropped ?? 0, pendingHandshakes: admission.pendingCount,
                       peers: states, uplinks: uplinks)
        return metrics.registry
    }
}

/// Post-processing of the registry's text: families sorted by name (the registry emits them
/// in dictionary order), each opened by a `# HELP` line from `MetricName`.
enum MetricsExposition {
    static func render(_ registry: PrometheusCollectorRegistry) -> String {
        addingHelp(to: registry.emitToString())
    }

    static func addingHelp(to text: String) -> String {
        var families: [(name: Substring, lines: [Substring])] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst("# TYPE ".count).prefix { $0 != " " }
                families.append((name, [line]))
            } else if line.hasPrefix("# HELP ") {
                continue  // ours replace any
            } else if !families.isEmpty {
                families[families.count - 1].lines.append(line)
            }
        }
        var out = ""
        out.reserveCapacity(text.utf8.count + families.count * 100)
        for family in families.sorted(by: { $0.name < $1.name }) {
            if let help = MetricName(rawValue: String(family.name))?.help {
                // Text format 0.0.4: in HELP, backslash and line feed are escaped.
                var escaped = ""
                for character in help {
                    switch character {
                    case "\\": escaped += "\\\\"
                    case "\n": escaped += "\\n"
                    default: escaped.append(character)
                    }
                }
                out += "# HELP \(family.name) \(escaped)\n"
            }
            for line in family.lines {
                out += line
                out += "\n"
            }
        }
        return out
    }
}
