import Foundation
import Testing
@testable import BYSTNode

/// How `byst status` writes ages, sizes, rates and links, and which nodes it finds.
@Suite struct StatusFormatTests {
    @Test func durationsUseTheTwoLargestAdjacentUnits() {
        #expect(StatusFormat.duration(seconds: 0) == "0 seconds")
        #expect(StatusFormat.duration(seconds: 1) == "1 second")
        #expect(StatusFormat.duration(seconds: 42.9) == "42 seconds")
        #expect(StatusFormat.duration(seconds: 60) == "1 minute")
        #expect(StatusFormat.duration(seconds: 185) == "3 minutes, 5 seconds")
        #expect(StatusFormat.duration(seconds: 3605) == "1 hour")
        #expect(StatusFormat.duration(seconds: 7260) == "2 hours, 1 minute")
        #expect(StatusFormat.duration(seconds: 4 * 86_400 + 3 * 3600 + 59) == "4 days, 3 hours")
        #expect(StatusFormat.duration(seconds: -5) == "0 seconds")
        #expect(StatusFormat.duration(seconds: .nan) == "0 seconds")
        #expect(StatusFormat.duration(seconds: .infinity) == "0 seconds")
    }

    @Test func agesSayAgoOrJustNow() {
        #expect(StatusFormat.ago(seconds: 0.4) == "just now")
        #expect(StatusFormat.ago(seconds: 12.3) == "12 seconds ago")
        #expect(StatusFormat.ago(seconds: 125) == "2 minutes, 5 seconds ago")
    }

    @Test func bytesIn1024Units() {
        #expect(StatusFormat.bytes(0) == "0 B")
        #expect(StatusFormat.bytes(1023) == "1023 B")
        #expect(StatusFormat.bytes(1024) == "1.00 KiB")
        #expect(StatusFormat.bytes(1536) == "1.50 KiB")
        #expect(StatusFormat.bytes(5 << 20) == "5.00 MiB")
        #expect(StatusFormat.bytes(3 << 30 + 512 << 20) == "3.50 GiB")
        #expect(StatusFormat.bytes(2 << 40) == "2.00 TiB")
        #expect(StatusFormat.bytes(UInt64.max) == "16384.00 PiB")
    }

    @Test func ratesInBytesAndBits() {
        #expect(StatusFormat.rate(bytesPerSecond: 0) == "0 B/s (0 bit/s)")
        #expect(StatusFormat.rate(bytesPerSecond: 100) == "100 B/s (800 bit/s)")
        #expect(StatusFormat.rate(bytesPerSecond: 1_250_000) == "1.19 MiB/s (10.0 Mbit/s)")
        #expect(StatusFormat.rate(bytesPerSecond: 125_000_000) == "119.21 MiB/s (1.00 Gbit/s)")
        #expect(StatusFormat.rate(bytesPerSecond: -1) == "0 B/s (0 bit/s)")
        #expect(StatusFormat.milliseconds(0.2149) == "0.21 ms")
        #expect(StatusFormat.milliseconds(23.46) == "23.5 ms")
    }

    static func link(compression: String?) -> StatusReport.Link {
        StatusReport.Link(id: 3, index: 1, remote: "192.0.2.7:7000", transport: "websocket", state: "up", rtt_ms: 0.213,
                          bytes_in: 3 << 20, bytes_out: 2048, key_id: "067ccccb9185a169", streams: 0, compression: compression,
                          records_compressed: 512, compression_ratio: 0.31, handshake_seconds_ago: 185)
    }

    @Test func aLinkLineNamesTransportEndpointAndWhatTheRTTIs() {
        #expect(StatusText.render(Self.link(compression: "off"))
            == "link 1  websocket  endpoint 192.0.2.7:7000  link RTT (ping frame) 0.21 ms  up 3 minutes, 5 seconds  in 3.00 MiB  out 2.00 KiB")
        #expect(StatusText.render(Self.link(compression: "streams")).hasSuffix("  zstd streams 0.31 (512 records compressed)"))
    }

    @Test func aPeerShowsHandshakeTransferRateAndErrors() {
        var peer = StatusReport.Peer(name: "hq", endpoint: "byst://192.0.2.7:7000", configured_links: 4, reconnects: 2, sessions: [])
        peer.latest_handshake_seconds_ago = 75
        peer.received_bytes = 5 << 30
        peer.sent_bytes = 1536
        peer.received_bytes_per_second = 1_250_000
        peer.sent_bytes_per_second = 0
        peer.rate_seconds = 5
        peer.links_up = 0
        peer.last_error = .init(cause: "connection refused by 192.0.2.7:7000", at: "2025-03-01T12:00:00.000Z", seconds_ago: 2,
                                attempts: 7, failing: true, failing_since: "2025-03-01T11:59:00.000Z", failing_seconds: 62)
        let text = StatusText.render(peer)
        #expect(text == """
            peer hq
              endpoint: byst://192.0.2.7:7000
              latest handshake: 1 minute, 15 seconds ago
              transfer: 5.00 GiB received, 1.50 KiB sent
              rate (last 5 s): 1.19 MiB/s (10.0 Mbit/s) in, 0 B/s (0 bit/s) out
              links: 0 of 4 up, 2 reconnects
              current error: connection refused by 192.0.2.7:7000 (failing for 1 minute, 2 seconds, 7 attempts, last error 2 seconds ago)
              no session

            """)
        peer.last_error?.failing = false
        #expect(StatusText.render(peer).contains(
            "  last error: connection refused by 192.0.2.7:7000 (2 seconds ago, then recovered after 7 attempts)\n"))
    }

    @Test func nodesFoundByConfigComeFirstAndOtherSocketsAreNamedAfterTheirFile() {
        let hub = StatusTarget(name: "hub", config: "/etc/byst/hub.toml", socket: "/run/byst/hub.sock")
        let merged = StatusTarget.merge([hub, hub], sockets: ["/run/byst/hub.sock", "/run/byst/lab.sock"])
        #expect(merged == [hub, StatusTarget(name: "lab", config: nil, socket: "/run/byst/lab.sock")])
    }

    @Test func aNameIsAFileNameNotAPath() {
        #expect(throws: CLIError.self) { try StatusTarget.named("../x", configDirectory: "/nonexistent", runDirectory: "/nonexistent") }
        #expect(throws: CLIError.self) { try StatusTarget.named("nobody", configDirectory: "/nonexistent", runDirectory: "/nonexistent") }
    }
}

/// `byst status` and `byst reload` name their node the same way.
@Suite struct NodeTargetOptionsTests {
    @Test func oneWayToNameTheNodeAtATime() throws {
        for command in ["status", "reload"] {
            let run = try byst([command, "-c", "/nonexistent.toml", "-n", "hub"])
            #expect(run.status == 64, "\(command): \(run.stderr)")
            #expect(run.stderr.contains("give at most one of -c/--config, -n/--name and --socket"), "\(command): \(run.stderr)")
            let missing = try byst([command, "-n", "no-such-node-here"])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no node 'no-such-node-here': neither /etc/byst/no-such-node-here.toml"), "\(command): \(missing.stderr)")
        }
    }
}
