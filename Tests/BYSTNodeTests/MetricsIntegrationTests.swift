import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// `GET /metrics` of real nodes in this process: scraped over loopback with a blocking client
/// and parsed as Prometheus text format 0.0.4, before, during and after a transfer through a
/// forward, and while a node with the wrong key keeps dialing.
@Suite(.serialized) struct MetricsIntegrationTests {
    let capture = LogCapture()

    /// TestCluster's branch, with a metrics listener and the hub's 100 ms keepalives.
    func branchConfig(_ dir: String, name: String, hubPort: UInt16, metrics: UInt16, links: Int, forward: (UInt16, UInt16)?) -> String {
        TestCluster.branchConfig(dir, name: name, hubPort: hubPort, links: links, forwards: forward.map { [$0] } ?? [],
                                 nodeExtra: "metrics_listen = [\"127.0.0.1:\(metrics)\"]", keepalive: "100ms")
    }

    @Test func countersMoveGaugesMatchAndHandshakeFailuresHaveReasons() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let hubPort = try BlockingSocket.freePort()
        let hubMetrics = try BlockingSocket.freePort()
        let branchMetrics = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let links = 3
        let hubText = TestCluster.hubConfig(dir, port: hubPort, targets: [digest.port],
                                            nodeExtra: "metrics_listen = [\"127.0.0.1:\(hubMetrics)\"]", keepalive: "100ms")
        let hub = try await TestCluster.start(hubText, directory: dir, name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            branchConfig(dir, name: "branch", hubPort: hubPort, metrics: branchMetrics, links: links,
                         forward: (forwardPort, digest.port)),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        let up = try await TestCluster.waitUntil(seconds: 10) {
            try await scrape(branchMetrics).value("byst_peer_links", ["peer": "hub"]) == Double(links)
        }
        #expect(up, "links did not come up")
        let before = try await scrape(branchMetrics)
        let hubBefore = try await scrape(hubMetrics)

        // The exposition itself: every sample belongs to a family with a TYPE, and has HELP.
        for exposition in [before, hubBefore] {
            #expect(exposition.problems.isEmpty, "\(exposition.problems)")
            for sample in exposition.samples {
                #expect(exposition.type(of: sample.name) != nil, "\(sample.name) has no # TYPE")
            }
            for family in exposition.types.keys { #expect(exposition.help[family] != nil, "\(family) has no # HELP") }
        }
        #expect(before.types["byst_peer_sent_bytes_total"] == "counter")
        #expect(before.types["byst_peer_links"] == "gauge")
        #expect(before.types["byst_peer_rtt_seconds"] == "histogram")
        #expect(before.types["byst_handshake_failures_total"] == "counter")
        #expect(before.value("byst_peer_configured_links", ["peer": "hub"]) == Double(links))
        #expect(hubBefore.value("byst_peer_links", ["peer": "branch"]) == Double(links))
        #expect(hubBefore.value("byst_peer_configured_links", ["peer": "branch"]) == 0)
        #expect(before.value("byst_peer_sessions", ["peer": "hub"]) == 1)

        // Phase 1 of a stream through the forward; scrape while it is open.
        let size = 24 << 20
        var generator = SplitMix64(seed: 11)
        var data = [UInt8](repeating: 0, count: size)
        data.withUnsafeMutableBytes { raw in
            for offset in stride(from: 0, to: size, by: 8) { raw.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self) }
        }
        let payload = data
        let socket = try await onThread { try BlockingSocket.connect(port: forwardPort) }
        defer { socket.close() }
        try await onThread { try payload[0..<(size / 2)].withUnsafeBytes { try socket.sendAll($0) } }
        // The forward may still hold part of it in socket buffers: wait until it went out.
        var during = try await scrape(branchMetrics)
        _ = try await TestCluster.waitUntil(seconds: 10) {
            during = try await scrape(branchMetrics)
            let sent = (during.value("byst_peer_sent_bytes_total", ["peer": "hub"]) ?? 0)
                - (before.value("byst_peer_sent_bytes_total", ["peer": "hub"]) ?? 0)
            return during.value("byst_peer_streams", ["peer": "hub"]) == 1 && sent >= Double(size / 2)
        }
        #expect(during.value("byst_peer_streams", ["peer": "hub"]) == 1)
        let hubDuring = try await scrape(hubMetrics)
        #expect(hubDuring.value("byst_peer_streams", ["peer": "branch"]) == 1)

        // Phase 2: the rest, end of stream, the far end's digest.
        let received = try await onThread { () throws -> [UInt8] in
            try payload[(size / 2)...].withUnsafeBytes { try socket.sendAll($0) }
            socket.shutdownWrite()
            return try socket.readToEnd(limit: 64)
        }
        let hash = try IncrementalHash()
        hash.update(data)
        #expect(received == hash.finalize(), "SHA-256 differs")
        // The digest came back after the hub sent it: its records are counted by now.
        let after = try await scrape(branchMetrics)
        let hubAfter = try await scrape(hubMetrics)

        func moved(_ from: Exposition, _ to: Exposition, _ name: String, _ peer: String) -> Double {
            (to.value(name, ["peer": peer]) ?? 0) - (from.value(name, ["peer": peer]) ?? 0)
        }
        // Both scrapes saw the counters move: during the stream, and after it.
        #expect(moved(before, during, "byst_peer_sent_bytes_total", "hub") >= Double(size / 2))
        #expect(moved(during, after, "byst_peer_sent_bytes_total", "hub") > 0)
        #expect(moved(before, after, "byst_peer_sent_bytes_total", "hub") >= Double(size))
        #expect(moved(before, after, "byst_peer_received_bytes_total", "hub") > 0)
        #expect(moved(during, after, "byst_peer_sent_records_total", "hub") > 0)
        #expect(moved(before, after, "byst_peer_received_records_total", "hub") > 0)
        #expect(moved(hubBefore, hubAfter, "byst_peer_received_bytes_total", "branch") >= Double(size))
        #expect(moved(hubBefore, hubAfter, "byst_peer_received_records_total", "branch") > 0)
        #expect(moved(hubBefore, hubAfter, "byst_peer_sent_bytes_total", "branch") > 0)

        #expect(after.value("byst_peer_links", ["peer": "hub"]) == Double(links))
        #expect(hubAfter.value("byst_peer_links", ["peer": "branch"]) == Double(links))
        let rttCount = after.value("byst_peer_rtt_seconds_count", ["peer": "hub"]) ?? 0
        #expect(rttCount > 0, "no RTT observations")
        #expect(after.value("byst_peer_rtt_seconds_bucket", ["peer": "hub", "le": "+Inf"]) == rttCount)
        #expect((after.value("byst_peer_rtt_seconds_sum", ["peer": "hub"]) ?? -1) >= 0)
        #expect((hubAfter.value("byst_peer_rtt_seconds_count", ["peer": "branch"]) ?? 0) > 0)
        #expect(after.value("byst_handshake_failures_total", ["reason": "unknown_key"]) == 0)

        // Other paths and methods.
        #expect(try await request(branchMetrics, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        #expect(try await request(branchMetrics, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").hasPrefix("HTTP/1.1 405"))
        #expect(try await request(branchMetrics, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        let huge = "GET /metrics HTTP/1.1\r\n" + String(repeating: "X-Junk: \(String(repeating: "a", count: 100))\r\n", count: 400) + "\r\n"
        #expect(try await request(branchMetrics, huge).hasPrefix("HTTP/1.1 431"))
        // A request trickled in one byte at a time is answered all the same.
        let dripped = try await onThread { () throws -> String in
            let socket = try BlockingSocket.connect(port: branchMetrics)
            defer { socket.close() }
            socket.setReceiveTimeout(seconds: 10)
            for byte in "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8 {
                try [byte].withUnsafeBytes { try socket.sendAll($0) }
            }
            return String(decoding: try socket.readToEnd(), as: UTF8.self)
        }
        #expect(dripped.hasPrefix("HTTP/1.1 200"))
        #expect(Exposition(parsing: String(dripped.split(separator: "\r\n\r\n", maxSplits: 1).last ?? "")).problems.isEmpty)

        // A node with another key under the same name dials the hub: each side counts its failure.
        let rogueKeys = try TestCluster.keyStore(dir, "rogue", [("hub", try PreSharedKey.generate())])
        let rogueMetrics = try BlockingSocket.freePort()
        let rogue = try await TestCluster.start(
            branchConfig(dir, name: "rogue", hubPort: hubPort, metrics: rogueMetrics, links: 1, forward: nil),
            directory: dir, name: "rogue", keys: rogueKeys, capture: capture)
        let refused = try await TestCluster.waitUntil(seconds: 10) {
            let hubSide = try await scrape(hubMetrics).value("byst_handshake_failures_total", ["reason": "unknown_key"]) ?? 0
            let rogueSide = try await scrape(rogueMetrics).value("byst_handshake_failures_total", ["reason": "closed"]) ?? 0
            return hubSide >= 1 && rogueSide >= 1
        }
        #expect(refused, "handshake failures not counted")
        let hubFinal = try await scrape(hubMetrics)
        #expect(hubFinal.value("byst_peer_links", ["peer": "branch"]) == Double(links), "the branch was disturbed")
        #expect(try await rogue.node.status().handshake_failures >= 1)

        try await rogue.node.shutdown()
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    // MARK: A blocking scrape client

    func request(_ port: UInt16, _ text: String) async throws -> String {
        try await onThread { () throws -> String in
            let socket = try BlockingSocket.connect(port: port)
            defer { socket.close() }
            socket.setReceiveTimeout(seconds: 10)
            try socket.sendText(text)
            return String(decoding: try socket.readToEnd(), as: UTF8.self)
        }
    }

    func scrape(_ port: UInt16) async throws -> Exposition {
        let response = try await request(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        guard let split = response.range(of: "\r\n\r\n") else { throw ScrapeFailure(response: response) }
        let head = response[..<split.lowerBound]
        guard head.hasPrefix("HTTP/1.1 200 "), head.contains("Content-Type: text/plain; version=0.0.4") else {
            throw ScrapeFailure(response: response)
        }
        return Exposition(parsing: String(response[split.upperBound...]))
    }

    struct ScrapeFailure: Error, CustomStringConvertible {
        let response: String
        var description: String { "bad scrape response: \(response.prefix(200).debugDescription)" }
    }
}

/// Prometheus text format 0.0.4, as a scraper reads it: `# HELP`, `# TYPE`, and
/// `name{label="value",…} value [timestamp]` lines; `problems` lists lines that do not parse.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var types: [String: String] = [:]
    var help: [String: String] = [:]
    var samples: [Sample] = []
    var problems: [String] = []

    init(parsing text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3 else {
                    problems.append(String(line))
                    continue
                }
                let rest = parts.count > 3 ? String(parts[3]) : ""
                if parts[1] == "TYPE" {
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(rest) else {
                        problems.append(String(line))
                        continue
                    }
                    types[String(parts[2])] = rest
                } else {
                    help[String(parts[2])] = rest
                }
            } else if line.hasPrefix("#") {
                continue
            } else if let sample = Self.sample(Substring(line)) {
                samples.append(sample)
            } else {
                problems.append(String(line))
            }
        }
    }

    /// The family a sample belongs to: histogram series carry a suffix.
    func type(of sampleName: String) -> String? {
        if let type = types[sampleName] { return type }
        for suffix in ["_bucket", "_sum", "_count"] where sampleName.hasSuffix(suffix) {
            if let type = types[String(sampleName.dropLast(suffix.count))], type == "histogram" || type == "summary" { return type }
        }
        return nil
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    private static func sample(_ line: Substring) -> Sample? {
        var rest = line[...]
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard let first = name.first, !first.isNumber else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                guard !label.isEmpty else { return nil }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { return nil }
                rest = rest.dropFirst(2)
                var value = ""
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\"" {
                        closed = true
                        break
                    }
                    if character == "\\" {
                        guard let escaped = rest.first else { return nil }
                        rest = rest.dropFirst()
                        switch escaped {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: return nil
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard closed, labels.updateValue(value, forKey: String(label)) == nil else { return nil }
                if rest.first == "," { rest = rest.dropFirst() }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { return nil }
        let fields = rest.split(separator: " ")
        guard fields.count == 1 || fields.count == 2, let valueText = fields.first else { return nil }
        let value: Double
        switch valueText {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let parsed = Double(valueText) else { return nil }
            value = parsed
        }
        if fields.count == 2, Int64(fields[1]) == nil { return nil }
        return Sample(name: String(name), labels: labels, value: value)
    }
}
