import ArgumentParser
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show peers, sessions, links (RTT, bytes) and streams of a running node.")

    @Option(name: [.short, .customLong("config")], help: "Config file (for its control socket path).")
    var config = "/etc/byst/byst.toml"
    @Option(help: "Control socket path (overrides the config).") var socket: String?
    @Flag(help: "Print the machine-readable JSON.") var json = false

    func run() throws {
        let path: String
        if let socket {
            path = socket
        } else {
            do { path = try NodeConfig.load(path: config).controlSocket } catch { throw CLIError(error.description) }
        }
        let reply = try ControlClient.request("status", socketPath: path)
        if json {
            print(reply, terminator: reply.hasSuffix("\n") ? "" : "\n")
            return
        }
        guard let report = try? JSONDecoder().decode(StatusReport.self, from: Data(reply.utf8)) else {
            throw CLIError("unexpected reply from \(path)")
        }
        print(StatusText.render(report), terminator: "")
    }
}

enum StatusText {
    static func render(_ report: StatusReport) -> String {
        var out = "node \(report.node)  up \(Int(report.uptime_seconds)) s  handshake failures \(report.handshake_failures)\n"
        if let registry = report.registry {
            let lease = registry.lease_valid_ms.map { "  lease valid \($0) ms" } ?? ""
            out += "registry \(registry.service)  \(registry.connected ? "connected" : "NOT connected")\(lease)\n"
        }
        if let ha = report.ha {
            out += "ha port \(ha.port)  \(ha.role)  owner \(ha.owner ?? "-")  transitions \(ha.transitions)\n"
            for transition in ha.recent.suffix(3) { out += "  \(transition.at) \(transition.role): \(transition.reason)\n" }
        }
        if let server = report.registry_server {
            out += "registry server  clients \(server.clients)  ports \(server.ports)  requests \(server.requests)  denied \(server.denied)\n"
        }
        for peer in report.peers {
            let proxy = peer.proxy.map { "  proxy \($0)" } ?? ""
            out += "peer \(peer.name)  endpoint \(peer.endpoint ?? "(accepts only)")\(proxy)  reconnects \(peer.reconnects)\n"
            if let error = peer.last_error {
                let state = error.failing ? "failing, \(error.attempts) attempts" : "recovered after \(error.attempts) attempts"
                out += "  last error \(Int(error.seconds_ago)) s ago (\(state)): \(error.cause)\n"
            }
            if peer.sessions.isEmpty { out += "  no session\n" }
            for session in peer.sessions {
                out += "  session \(session.id.prefix(8)) \(session.role) \(session.state)  streams \(session.streams)\n"
                for link in session.links {
                    let rtt = link.rtt_ms.map { String(format: "%.2f ms", $0) } ?? "-"
                    // "zstd 0.31 (512 records)": sent payload after/before compression (PROTOCOL.md §4.2).
                    let zstd = link.compression_ratio.map { ratio in
                        link.compression == "off" ? "" : "  zstd \(String(format: "%.2f", ratio)) (\(link.records_compressed ?? 0) records)"
                    } ?? ""
                    out += "    link \(link.index) \(link.remote)\(link.transport.map { " (\($0))" } ?? "")  rtt \(rtt)  in \(link.bytes_in) B  out \(link.bytes_out) B\(zstd)\n"
                }
            }
        }
        return out
    }
}

/// A blocking client for the control socket.
enum ControlClient {
    static func request(_ command: String, socketPath: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CLIError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw CLIError("socket path too long: \(socketPath)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw CLIError("cannot reach the node at \(socketPath): \(String(cString: strerror(errno))) (is `byst up` running?)")
        }
        let line = Array((command + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            reply += chunk[0..<n]
        }
        return String(decoding: reply, as: UTF8.self)
    }
}
