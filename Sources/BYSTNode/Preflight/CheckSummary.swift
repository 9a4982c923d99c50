/// `byst check`'s one-screen picture of what `byst up` would run.
enum CheckSummary {
    static func lines(_ config: NodeConfig, file: String, keyCount: Int?) -> [String] {
        var out = ["node \(config.name.configQuoted) (\(file))"]
        func row(_ label: String, _ value: String) { out.append("  " + (label + ":").padding(12) + " " + value) }
        func list(_ addresses: [HostPort]) -> String { addresses.map(\.description).joined(separator: ", ") }
        let haNote = config.ha == nil ? "" : " (while this gateway is active)"
        if !config.listen.isEmpty { row("listen", list(config.listen) + haNote) }
        if !config.http.listen.isEmpty { row("http", list(config.http.listen) + " path \(config.http.path)" + haNote) }
        if !config.http.tlsListen.isEmpty { row("https", list(config.http.tlsListen) + " path \(config.http.path)" + haNote) }
        if !config.metricsListen.isEmpty { row("metrics", list(config.metricsListen)) }
        row("control", config.controlSocket)
        row("key store", config.keyStore + (keyCount.map { " (\($0) key\($0 == 1 ? "" : "s"))" } ?? ""))
        if let tun = config.tun {
            row("tun", "\(tun.name) \(tun.addresses.map(\.description).joined(separator: ", ")) mtu \(tun.mtu), \(tun.queues) queue\(tun.queues == 1 ? "" : "s"), offload \(tun.offload ? "on" : "off")")
        } else {
            row("tun", "none (port forwards only)")
        }
        if let registry = config.registry { row("registry", registry.service.description) }
        if let ha = config.ha {
            let ports = ha.ports.count == 1 ? "port \(ha.ports[0].configQuoted)" : "ports \(ha.ports.map(\.configQuoted).joined(separator: ", ")) (preferred first)"
            row("ha", "\(ports), advertising \(ha.info)")
        }
        out.append("  peers (\(config.peers.count)):")
        for peer in config.peers {
            var text = "    \(peer.name) key \(peer.key): "
            if let endpoint = peer.endpoint { text += "\(endpoint) ×\(peer.links) link\(peer.links == 1 ? "" : "s")" } else { text += "accepts links only" }
            if !peer.uplinks.isEmpty { text += " via uplinks \(peer.uplinks.map(\.summary).joined(separator: ", "))" }
            if !peer.allowedIPs.isEmpty { text += "; allowed_ips \(peer.allowedIPs.map(\.description).joined(separator: ", "))" }
            if let haPort = peer.haPort { text += "; while active for \(haPort.configQuoted)" }
            if !peer.allowTargets.isEmpty { text += "; allow_targets \(peer.allowTargets.map(\.description).joined(separator: ", "))" }
            out.append(text)
        }
        if !config.forwards.isEmpty {
            out.append("  forwards (\(config.forwards.count)):")
            for forward in config.forwards { out.append("    \(forward.listen) → \(forward.peer) → \(forward.target)") }
        }
        return out
    }
}
