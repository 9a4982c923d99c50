import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// Record compression between two real nodes on loopback (PROTOCOL.md §4.2): text through a
/// forward is compressed and arrives intact; random data goes out as it is, tried only now
/// and then; `compression = "off"` on the accepting side means the feature is not offered.
@Suite(.serialized) struct CompressionIntegrationTests {
    let capture = LogCapture()

    func branchConfig(_ dir: String, hubPort: UInt16, forward: (UInt16, UInt16), compression: String) -> String {
        """
        [node]
        name = "branch"
        \(TestCluster.nodeFiles("branch", dir: dir))
        compression_level = 3

        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "byst://127.0.0.1:\(hubPort)"
        links = 1
        compression = "\(compression)"

        [[forward]]
        listen = "127.0.0.1:\(forward.0)"
        peer = "hub"
        target = "127.0.0.1:\(forward.1)"
        """
    }

    struct Outcome {
        var branch: StatusReport.Link
        var hub: StatusReport.Link
    }

    /// Starts hub and branch (1 link), sends `count` bytes from `generate` through the
    /// forward with a SHA-256 check, and returns both ends' view of the link.
    func transfer(count: Int, hubCompression: String = "streams", branchCompression: String = "streams",
                  generate: @escaping @Sendable (Int, inout [UInt8]) -> Void) async throws -> Outcome {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hubText = TestCluster.hubConfig(dir, port: hubPort, targets: [digest.port], peerExtra: "compression = \"\(hubCompression)\"")
        let hub = try await TestCluster.start(hubText, directory: dir, name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            branchConfig(dir, hubPort: hubPort, forward: (forwardPort, digest.port), compression: branchCompression),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        let up = try await TestCluster.waitUntil(seconds: 10) {
            try await branch.node.status().peers.first?.sessions.first?.links.count == 1
        }
        #expect(up, "link did not come up: \(capture.lines.withLock { $0.suffix(12).joined(separator: "\n") })")
        let (sent, received) = try await onThread { try sendGenerated(port: forwardPort, count: count, generate: generate) }
        #expect(sent == received, "SHA-256 differs")
        let branchLink = try #require(try await branch.node.status().peers.first?.sessions.first?.links.first)
        let hubLink = try #require(try await hub.node.status().peers.first?.sessions.first?.links.first)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
        return Outcome(branch: branchLink, hub: hubLink)
    }

    @Test func compressibleTextIsCompressedAndArrivesIntact() async throws {
        let outcome = try await transfer(count: 32 << 20) { offset, chunk in logLines(from: offset, into: &chunk) }
        let link = outcome.branch
        print("compression: text, branch link: \(link.records_compressed ?? 0) compressed, \(link.records_uncompressed ?? 0) not, \(link.compression_attempts ?? 0) attempts, ratio \(link.compression_ratio ?? 1)")
        #expect(link.compression == "streams")
        #expect((link.records_compressed ?? 0) > 100)
        #expect((link.compression_ratio ?? 1) < 0.5)
        // The hub decompressed what the branch compressed (its acks are too small to compress).
        #expect(outcome.hub.records_decompressed == link.records_compressed)
        #expect(link.bytes_out < 16 << 20, "\(link.bytes_out) bytes on the wire for 32 MiB of text")
    }

    @Test func randomDataIsSentAsItIs() async throws {
        let outcome = try await transfer(count: 32 << 20) { offset, chunk in
            var generator = SplitMix64(seed: UInt64(offset) &+ 1)
            for index in chunk.indices { chunk[index] = UInt8(truncatingIfNeeded: generator.next()) }
        }
        let link = outcome.branch
        let records = (link.records_compressed ?? 0) + (link.records_uncompressed ?? 0)
        print("compression: random, branch link: \(records) records, \(link.compression_attempts ?? 0) attempts, ratio \(link.compression_ratio ?? 1)")
        #expect(link.compression == "streams")
        #expect(link.records_compressed == 0)
        #expect((link.compression_ratio ?? 0) == 1)
        // ≥ 512 records of 64 KiB; the backoff tries about one in 65 after the first few.
        #expect(records >= 500)
        #expect((link.compression_attempts ?? .max) <= records / 20)
        #expect(outcome.hub.records_decompressed == 0)
    }

    @Test func offOnTheAcceptingSideMeansNotOffered() async throws {
        let outcome = try await transfer(count: 4 << 20, hubCompression: "off") { offset, chunk in
            logLines(from: offset, into: &chunk)
        }
        // The hub's only peer has compression off: the hub does not offer it, so the branch
        // (which would) compresses nothing either.
        #expect(outcome.branch.compression == "off")
        #expect(outcome.hub.compression == "off")
        #expect(outcome.branch.records_compressed == 0)
        #expect(outcome.branch.compression_attempts == 0)
        #expect(outcome.branch.bytes_out > 4 << 20)
    }
}

/// Realistic access-log lines: compressible like most text a forward carries.
func logLines(from offset: Int, into chunk: inout [UInt8]) {
    var line = offset / 97
    var filled = 0
    while filled < chunk.count {
        let text = "2026-11-27T10:\(10 + line % 50):\(10 + line % 49).\(100 + line % 900)Z INFO gateway request id=\(line &* 7919 % 100_003) "
            + "path=/api/v1/orders/\(line % 977) status=\(line % 13 == 0 ? 404 : 200) bytes=\(line % 4096) duration_ms=\(line % 300)\n"
        for byte in text.utf8 where filled < chunk.count {
            chunk[filled] = byte
            filled += 1
        }
        line += 1
    }
}

/// Sends `count` bytes through a forward, 64 KiB at a time from `generate(offset, &chunk)`,
/// and returns (sent digest, digest the far end computed).
func sendGenerated(port: UInt16, count: Int, generate: (Int, inout [UInt8]) -> Void) throws -> (sent: [UInt8], received: [UInt8]) {
    let socket = try BlockingSocket.connect(port: port)
    defer { socket.close() }
    let hash = try IncrementalHash()
    var offset = 0
    while offset < count {
        var chunk = [UInt8](repeating: 0, count: min(64 * 1024, count - offset))
        generate(offset, &chunk)
        try chunk.withUnsafeBytes { part in
            hash.update(part)
            try socket.sendAll(part)
        }
        offset += chunk.count
    }
    socket.shutdownWrite()
    return (hash.finalize(), try socket.readToEnd(limit: 64))
}
