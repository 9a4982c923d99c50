import Foundation

/// The human view of `byst status` (docs/OPERATIONS.md, "Status"), in the manner of
/// `wg show`: the node, then per peer its handshake, transfer, rate, errors and links.
enum StatusText {
    static func render(_ report: StatusReport) -> String {
        var out = "node \(report.node)\n"
        out += "  up: \(StatusFormat.duration(seconds: report.uptime_seconds))\n"
        out += "  handshake failures: \(report.handshake_failures)\n"
        if let tun = report.tun {
            let counters = tun.counters
            let dropped = counters.drops.reduce(0) { $0 + $1.1 } + tun.dropped_queue_full
            // Offload super-packets count once each way: read whole, and written whole (the kernel cuts them).
            let written = counters.packets_to_tun + counters.super_packets_received
            out += "  tun \(tun.name): \(counters.packets_from_tun) packets read, \(written) written, \(dropped) dropped\n"
        }
        if let registry = report.registry {
            let lease = registry.lease_valid_ms.map { ", lease valid \($0) ms" } ?? ""
            out += "  registry: \(registry.service), \(registry.connected ? "connected" : "NOT connected")\(lease)\n"
        }
        for port in report.ha?.ports ?? [] {
            let preferred = port.preferred && (report.ha?.ports.count ?? 0) > 1 ? " (preferred)" : ""
            out += "  ha port \(port.port)\(preferred): \(port.role), owner \(port.owner ?? "-"), \(StatusFormat.count(port.transitions, "transition"))\n"
            for transition in port.recent.suffix(3) { out += "    \(transition.at) \(transition.role): \(transition.reason)\n" }
        }
        if let server = report.registry_server {
            out += "  registry server: \(StatusFormat.count(server.clients, "client")), \(StatusFormat.count(server.ports, "port")), \(StatusFormat.count(server.requests, "request")), \(server.denied) denied\n"
        }
        if let summary = report.summary {
            out += "  peers: \(summary.peers) configured, \(summary.peers_up) up, \(StatusFormat.count(summary.links, "link")), "
                + "\(StatusFormat.count(summary.sessions, "session")), \(StatusFormat.count(summary.streams, "stream"))\n"
            out += "  transfer: \(StatusFormat.bytes(summary.received_bytes)) received, \(StatusFormat.bytes(summary.sent_bytes)) sent\n"
            if summary.failing_peers > 0 {
                let more = summary.failing_peers > summary.failing.count ? ", …" : ""
                out += "  failing: \(summary.failing_peers) (\(summary.failing.joined(separator: ", "))\(more))\n"
            }
        }
        for peer in report.peers { out += "\n" + render(peer) }
        return out
    }

    static func render(_ peer: StatusReport.Peer) -> String {
        var out = "peer \(peer.name)\n"
        out += "  endpoint: \(peer.endpoint ?? "(accepts only)")\(peer.proxy.map { " via proxy \($0)" } ?? "")\n"
        if let ago = peer.latest_handshake_seconds_ago {
            out += "  latest handshake: \(StatusFormat.ago(seconds: ago))\n"
        } else {
            out += "  latest handshake: none yet\n"
        }
        if let received = peer.received_bytes, let sent = peer.sent_bytes {
            out += "  transfer: \(StatusFormat.bytes(received)) received, \(StatusFormat.bytes(sent)) sent\n"
        }
        if let into = peer.received_bytes_per_second, let from = peer.sent_bytes_per_second, let seconds = peer.rate_seconds {
            out += "  rate (last \(String(format: "%.0f", seconds)) s): \(StatusFormat.rate(bytesPerSecond: into)) in, "
                + "\(StatusFormat.rate(bytesPerSecond: from)) out\n"
        }
        let up = peer.links_up ?? peer.sessions.reduce(0) { $0 + $1.links.count }
        let configured = peer.endpoint == nil ? "" : " of \(peer.configured_links)"
        out += "  links: \(up)\(configured) up, \(StatusFormat.count(peer.reconnects, "reconnect"))\n"
        if let error = peer.last_error { out += render(error) }
        if let loss = peer.last_link_loss {
            out += "  last link loss: link \(loss.index) (\(loss.transport)): \(loss.cause) "
                + "(\(StatusFormat.ago(seconds: loss.seconds_ago)); \(StatusFormat.count(loss.losses, "link")) lost since configured)\n"
        }
        if peer.sessions.isEmpty { out += "  no session\n" }
        for session in peer.sessions {
            out += "  session \(session.id.prefix(8)) (\(session.role), \(session.state)): \(StatusFormat.count(session.streams, "stream"))\n"
            for link in session.links { out += "    " + render(link) + "\n" }
        }
        return out
    }

    /// While dials fail: the current error and since when; after: the last one and when.
    static func render(_ error: StatusReport.LastError) -> String {
        let ago = StatusFormat.ago(seconds: error.seconds_ago)
        guard error.failing else {
            return "  last error: \(error.cause) (\(ago), then recovered after \(StatusFormat.count(error.attempts, "attempt")))\n"
        }
        let since = error.failing_seconds.map { "failing for \(StatusFormat.duration(seconds: $0)), " } ?? ""
        return "  current error: \(error.cause) (\(since)\(StatusFormat.count(error.attempts, "attempt")), last error \(ago))\n"
    }

    /// `link 0  byst  endpoint 192.0.2.7:7000  link RTT (ping frame) 0.21 ms  up 3 minutes  in 1.20 MiB  out 300 KiB`
    static func render(_ link: StatusReport.Link) -> String {
        var line = "link \(link.index)  \(link.transport ?? "byst")\(link.uplink.map { " via uplink \($0)" } ?? "")  endpoint \(link.remote)"
        line += "  link RTT (ping frame) \(link.rtt_ms.map(StatusFormat.milliseconds) ?? "-")"
        if let up = link.handshake_seconds_ago { line += "  up \(StatusFormat.duration(seconds: up))" }
        line += "  in \(StatusFormat.bytes(link.bytes_in))  out \(StatusFormat.bytes(link.bytes_out))"
        // Only when this side compresses: "zstd streams 0.31 (512 records)", sent payload after/before (PROTOCOL.md §4.2).
        if let scope = link.compression, scope != "off" {
            let records = link.records_compressed ?? 0
            let ratio = records > 0 ? link.compression_ratio.map { String(format: " %.2f", $0) } ?? "" : ""
            line += "  zstd \(scope)\(ratio) (\(StatusFormat.count(records, "record")) compressed)"
        }
        return line
    }
}
