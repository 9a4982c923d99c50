import BYSTProto
import Testing
@testable import BYSTNode

/// `[limits]`: defaults, every key, ranges, and what the session machines get.
@Suite struct LimitsConfigTests {
    static let file = "/etc/byst/hub.toml"
    static let node = "[node]\nname = \"hub\"\n"

    @Test func defaultsWithoutTheTable() throws {
        let config = try NodeConfig.parse(Self.node, file: Self.file)
        #expect(config.limits == LimitsConfig())
        #expect(config.limits.pendingHandshakes == 512 && config.limits.handshakeRate == 20 && config.limits.handshakeBurst == 100)
        #expect(config.limits.handshakeTimeout == .seconds(5))
        var session = SessionConfig()
        config.limits.apply(to: &session)
        // The session defaults are the machine's own: nothing changes without the table.
        let plain = SessionConfig()
        #expect(session.maxStreams == plain.maxStreams && session.streamWindow == plain.streamWindow
                && session.sendBufferLimit == plain.sendBufferLimit && session.sessionWindow == plain.sessionWindow
                && session.sessionSendBufferLimit == plain.sessionSendBufferLimit)
    }

    @Test func everyKey() throws {
        let text = Self.node + """
            [limits]
            links_per_peer = 16
            sessions_per_peer = 4
            pending_handshakes = 64
            handshake_timeout = "3s"
            handshake_rate = 0
            handshake_burst = 8
            handshake_sources = 256
            accept_rate = 50
            accept_burst = 60
            accept_backlog = 256
            accept_loop_lag = "50ms"
            streams_per_session = 100
            stream_buffer = "512KiB"
            session_buffer = 8388608
            http_max_head = 4096
            registry_ports = 10
            registry_watches = 20
            """
        let limits = try NodeConfig.parse(text, file: Self.file).limits
        #expect(limits.linksPerPeer == 16 && limits.sessionsPerPeer == 4 && limits.pendingHandshakes == 64)
        #expect(limits.handshakeTimeout == .seconds(3) && limits.handshakeRate == 0 && limits.handshakeBurst == 8)
        #expect(limits.handshakeSources == 256 && limits.streamsPerSession == 100)
        #expect(limits.acceptRate == 50 && limits.acceptBurst == 60)
        #expect(limits.acceptPolicy.maxInFlight == 256 && limits.acceptPolicy.maxLoopLag == .milliseconds(50))
        #expect(limits.streamBuffer == 512 << 10 && limits.sessionBuffer == 8 << 20)
        #expect(limits.httpHeadBytes == 4096 && limits.registryPorts == 10 && limits.registryWatches == 20)
        var session = SessionConfig()
        limits.apply(to: &session)
        #expect(session.maxStreams == 100 && session.streamWindow == 512 << 10 && session.sendBufferLimit == 512 << 10)
        #expect(session.sessionWindow == 8 << 20 && session.sessionSendBufferLimit == 8 << 20)
        #expect(limits.httpLimits.maxHeadBytes == 4096)
        #expect(limits.registry == RegistryService.Limits(portsPerClient: 10, watchesPerClient: 20))
    }

    @Test func outOfRangeValuesAreRefusedWithTheirLine() {
        let cases: [(String, String)] = [
            ("pending_handshakes = 0", "hub.toml:5: [limits]: pending_handshakes must be an integer 1…65536, got 0"),
            ("handshake_timeout = \"200ms\"", "hub.toml:5: [limits]: handshake_timeout must be 1s…1m, got 200ms"),
            ("accept_loop_lag = \"20s\"", "hub.toml:5: [limits]: accept_loop_lag must be 1ms…10s, got 20s"),
            ("accept_backlog = 0", "hub.toml:5: [limits]: accept_backlog must be an integer 1…65536, got 0"),
            ("stream_buffer = \"1KiB\"", "hub.toml:5: [limits]: stream_buffer must be a size of 256KiB…64MiB"),
            ("stream_buffer = \"8MiB\"\nsession_buffer = \"4MiB\"", "hub.toml:6: [limits]: session_buffer must be at least stream_buffer"),
            ("handshake_rat = 5", "hub.toml:5: [limits]: unknown key \"handshake_rat\""),
            ("http_max_head = 100000", "hub.toml:5: [limits]: http_max_head must be an integer 1024…65536, got 100000"),
        ]
        for (line, expected) in cases {
            let error = NodeConfig.parseError(Self.node + "\n[limits]\n" + line + "\n", file: Self.file) ?? "accepted"
            #expect(error.contains(expected), "\(line): \(error)")
        }
        #expect(NodeConfig.parseError("limits = 3\n" + Self.node, file: Self.file)?.contains("limits") == true)
    }
}
