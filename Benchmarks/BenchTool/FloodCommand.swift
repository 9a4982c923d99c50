import ArgumentParser
import BYSTNode
import BYSTProto
import Foundation
import NIOCore

/// `byst-bench flood`: the flood generator's command line (FloodGenerator.swift).
struct FloodCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "Open bogus connections to a link listener at a given rate (Tests/E2E/flood.sh).",
        discussion: """
            For test networks of your own (network namespaces, loopback): targets and sources \
            must be loopback, private (RFC 1918, fc00::/7), shared (100.64.0.0/10) or link-local \
            addresses. Bounded: at most rate × seconds connections, --connections at once, each \
            reset within --hold. Prints one line of counts (--json: one JSON object).
            """)

    @Option(help: "The link listener: an IP address and port, e.g. 192.168.242.1:7000.") var target: String
    @Option(help: "Connections per second.") var rate = 5000
    @Option(help: "How long to flood, in seconds.") var seconds = 10
    @Option(help: "Connections open at once, at most.") var connections = 1024
    @Option(help: "mixed, handshake, junk, silent or http.") var mode = "mixed"
    @Option(help: "Key id (16 hex digits) for half the bogus handshakes: they then reach the AEAD check.") var keyID: String?
    @Option(help: "Local address to connect from (repeat for several; round robin).") var source: [String] = []
    @Option(help: "Threads, each with its share of the rate.") var threads = 1
    @Option(help: "Longest a connection is kept open, e.g. 1s or 500ms.") var hold = "1s"
    @Flag(help: "Print the counts as JSON.") var json = false

    func run() async throws {
        let options = try validated()
        let result = await FloodGenerator.run(options, threads: threads)
        let rate = result.seconds > 0 ? Double(result.connected) / result.seconds : 0
        let kinds = FloodOptions.Kind.allCases.map { "\($0)=\(result.byKind[$0.rawValue])" }.joined(separator: " ")
        if json {
            let byKind = FloodOptions.Kind.allCases.map { "\"\($0)\":\(result.byKind[$0.rawValue])" }.joined(separator: ",")
            print("{\"started\":\(result.started),\"connected\":\(result.connected),\"failed\":\(result.failed),"
                  + "\"closed_by_peer\":\(result.closedByPeer),\"bytes_sent\":\(result.bytesSent),"
                  + "\"seconds\":\(String(format: "%.3f", result.seconds)),\"rate\":\(Int(rate)),\"by_kind\":{\(byKind)}}")
        } else {
            print("flood: \(result.connected) connections in \(String(format: "%.3f", result.seconds)) s = \(Int(rate))/s "
                  + "(started \(result.started), connect failures \(result.failed), closed by the node \(result.closedByPeer); \(kinds))")
        }
    }

    private func validated() throws -> FloodOptions {
        guard (1...1_000_000).contains(rate), (1...600).contains(seconds), (1...65536).contains(connections),
              (1...64).contains(threads)
        else {
            throw BenchError("--rate must be 1…1000000, --seconds 1…600, --connections 1…65536, --threads 1…64")
        }
        guard let mode = FloodOptions.Mode(rawValue: mode) else {
            throw BenchError("--mode must be one of \(FloodOptions.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let hold = Duration.parseConfig(hold), hold <= .seconds(60) else {
            throw BenchError("--hold must be a duration like \"1s\" or \"500ms\", at most 60 s")
        }
        let targetAddress = try Self.ownAddress(target, what: "--target")
        var keyID: KeyID?
        if let text = self.keyID {
            guard let bytes = Self.hexBytes(text), let id = KeyID(bytes: bytes) else {
                throw BenchError("--key-id must be 16 hex digits (byst key show prints it)")
            }
            keyID = id
        }
        let sources = try source.map { try Self.ownSource($0) }
        return FloodOptions(target: targetAddress, rate: rate, duration: .seconds(seconds), maxOpen: connections, mode: mode,
                            keyID: keyID, sources: sources, hold: hold)
    }

    /// An IP literal with a port, inside networks one may flood (never a public address).
    static func ownAddress(_ text: String, what: String) throws -> SocketAddress {
        guard case .success(let hostPort) = HostPort.parse(text),
              let address = try? SocketAddress(ipAddress: hostPort.host, port: Int(hostPort.port))
        else {
            throw BenchError("\(what) must be an IP address and port like 192.168.242.1:7000 or [fd00::1]:7000, got '\(text)'")
        }
        guard isOwnNetwork(address) else {
            throw BenchError("\(what) \(text) is not a loopback, private or link-local address: flood only networks of your own")
        }
        return address
    }

    /// An IP literal (no port) to connect from, inside networks of one's own.
    static func ownSource(_ text: String) throws -> SocketAddress {
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        guard let address = try? SocketAddress(ipAddress: bare, port: 0) else {
            throw BenchError("--source must be an IP address like 192.168.242.2, got '\(text)'")
        }
        guard isOwnNetwork(address) else {
            throw BenchError("--source \(text) is not a loopback, private or link-local address")
        }
        return address
    }

    static func isOwnNetwork(_ address: SocketAddress) -> Bool {
        var bytes: [UInt8] = []
        switch address {
        case .v4(let ipv4):
            var raw = ipv4.address.sin_addr
            bytes = withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let ipv6):
            var raw = ipv6.address.sin6_addr
            bytes = withUnsafeBytes(of: &raw) { Array($0) }
        default:
            return false
        }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        if bytes.count == 4 {
            let (a, b) = (bytes[0], bytes[1])
            return a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
                || (a == 100 && (64...127).contains(b)) || (a == 169 && b == 254)
        }
        guard bytes.count == 16 else { return false }
        let loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
        return loopback || bytes[0] & 0xFE == 0xFC || (bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80)
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, digits.allSatisfy({ UInt8(String(UnicodeScalar($0)), radix: 16) != nil }) else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
