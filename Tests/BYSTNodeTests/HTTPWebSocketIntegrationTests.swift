import BYSTProto
import Foundation
import NIOCore
import NIOWebSocket
import Testing
@testable import BYSTNode

/// WebSocket links between two real nodes, and the hub's answers to hostile upgrades and
/// frames while a branch keeps moving data (PROTOCOL.md §6.4).
extension HTTPIntegrationTests {
    @Test func webSocketModeCarriesStreams() async throws {
        try await transfer(branchExtra: "http_mode = \"websocket\"")
        #expect(!capture.contains("WebSocket"), "a WebSocket link failed: \(capture.lines.withLock { $0.filter { $0.contains("WebSocket") }.prefix(3) })")
        let linksUp = capture.lines.withLock { $0.filter { $0.contains("link up") }.count }
        #expect(linksUp == 4, "links were dialled again: \(linksUp) 'link up' lines for 2 links on each side")
    }

    /// RFC 6455 §1.3's example key and its accept value.
    static let webSocketKey = "dGhlIHNhbXBsZSBub25jZQ=="
    static let webSocketAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    static func upgradeRequest(version: String = "13", key: String? = webSocketKey, http: String = "HTTP/1.1") -> String {
        "GET /byst \(http)\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: \(version)\r\n"
            + (key.map { "Sec-WebSocket-Key: \($0)\r\n" } ?? "") + "\r\n"
    }

    @Test func hostileWebSocketIsClosedWithItsCodeAndOthersKeepWorking() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let httpPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(dir, httpPort: httpPort, target: digest.port), directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: "http://127.0.0.1:\(httpPort)/byst", extra: "http_mode = \"websocket\"",
                         forward: (forwardPort, digest.port)),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 15) { try await links(of: branch.node) == 2 })
        let legit = Task { try await onThread { try sendThroughForward(port: forwardPort, count: 32 << 20, seed: 98) } }

        // Upgrades the hub refuses with an HTTP answer.
        let refused: [(name: String, request: String, expect: String)] = [
            ("version 8", Self.upgradeRequest(version: "8"), "HTTP/1.1 426"),
            ("no key", Self.upgradeRequest(key: nil), "HTTP/1.1 400"),
            ("short key", Self.upgradeRequest(key: "AAAA"), "HTTP/1.1 400"),
            ("HTTP/1.0", Self.upgradeRequest(http: "HTTP/1.0"), "HTTP/1.1 400"),
            ("no Connection: Upgrade", "GET /byst HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Key: \(Self.webSocketKey)\r\n\r\n", "HTTP/1.1 400"),
        ]
        for item in refused {
            let response = try await onThread { () throws -> String in
                let socket = try BlockingSocket.connect(port: httpPort)
                defer { socket.close() }
                socket.setReceiveTimeout(seconds: 15)
                try socket.sendText(item.request)
                return String(decoding: (try? socket.readToEnd(limit: 64 * 1024)) ?? [], as: UTF8.self)
            }
            #expect(response.hasPrefix(item.expect), "\(item.name): got \(response.prefix(60).debugDescription)")
        }

        // Upgraded, then hostile frames: each ends in a close frame with its code, then the close.
        let oversized = try WebSocketWire.encode([WebSocketWire.binary([UInt8](repeating: 1, count: WebSocketReceiver.maxMessageBytes + 1))])
        let hostile: [(name: String, frames: ByteBuffer, code: UInt16)] = [
            ("unmasked frame", try WebSocketWire.encode([WebSocketWire.binary([1, 2, 3], masked: false)]), 1002),
            ("text frame", try WebSocketWire.encode([WebSocketWire.binary(Array("hello".utf8), opcode: .text)]), 1003),
            // Only the header and a little: the length alone must end it.
            ("oversized frame", oversized.getSlice(at: 0, length: 64) ?? oversized, 1009),
            // Empty fragments: nothing reaches the link (whose handshake would refuse junk bytes
            // first), only the count ends it. Sizes over fragments: WebSocketLinkStreamTests.
            ("message of too many fragments", try WebSocketWire.encode(
                [WebSocketWire.binary([], fin: false)]
                    + (0..<WebSocketReceiver.maxMessageFrames).map { _ in WebSocketWire.binary([], fin: false, opcode: .continuation) }), 1009),
            ("ping flood", try WebSocketWire.encode((0..<200).map { _ in WebSocketWire.binary([], opcode: .ping) }), 1008),
        ]
        for item in hostile {
            let started = Date()
            let frameBytes = Array(buffer: item.frames)
            let (answer, closed) = try await onThread { () throws -> ([UInt8], Bool) in
                let socket = try BlockingSocket.connect(port: httpPort)
                defer { socket.close() }
                try socket.sendText(Self.upgradeRequest())
                // The hub may close before it has read everything (an oversized frame): ignore EPIPE.
                try? frameBytes.withUnsafeBytes { try socket.sendAll($0) }
                return socket.drain(until: .now + .seconds(10))
            }
            let text = String(decoding: answer, as: UTF8.self)
            let headEnd = text.range(of: "\r\n\r\n")
            let head = headEnd.map { String(text[..<$0.upperBound]) } ?? text
            var frames: [WebSocketFrame] = []
            if headEnd != nil { frames = try WebSocketWire.decode(ByteBuffer(bytes: answer[head.utf8.count...])) }
            #expect(head.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), "\(item.name): \(head.prefix(60).debugDescription)")
            #expect(head.contains("Sec-WebSocket-Accept: \(Self.webSocketAccept)\r\n"), "\(item.name): wrong accept value")
            let close = frames.last { $0.opcode == .connectionClose }
            #expect(close.flatMap(WebSocketWire.closeCode) == item.code, "\(item.name): closed with \(close.flatMap(WebSocketWire.closeCode).map(String.init) ?? "no close frame")")
            #expect(frames.allSatisfy { $0.maskKey == nil }, "\(item.name): the server masked a frame")
            #expect(closed, "\(item.name): the connection stayed open")
            #expect(Date().timeIntervalSince(started) < 8, "\(item.name): took too long")
            if item.name == "ping flood" {
                #expect(frames.filter { $0.opcode == .pong }.count == WebSocketReceiver.controlBurst)
            }
        }

        let (sent, received) = try await legit.value
        #expect(sent == received, "the legitimate stream was disturbed")
        #expect(try await links(of: branch.node) == 2)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }
}
