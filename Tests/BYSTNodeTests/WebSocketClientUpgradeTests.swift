import BYSTProto
import NIOCore
import NIOEmbedded
import Testing
@testable import BYSTNode

/// The branch's upgrade request and its checks of the answer (PROTOCOL.md §6.4).
@Suite struct WebSocketClientUpgradeTests {
    /// RFC 6455 §1.3's example key and its accept value.
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    final class Errors: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var errors: [any Error] = []
        var bytes: [UInt8] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += Array(buffer: unwrapInboundIn(data)) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    }

    static func start() throws -> (EmbeddedChannel, Errors) {
        let errors = Errors()
        let channel = EmbeddedChannel()
        let headers = HTTPHeaders([("Host", "hub:8080"), ("User-Agent", "byst/1")])
        let upgrade = WebSocketClientUpgrade(target: "/byst", headers: headers, key: key)
        try channel.pipeline.syncOperations.addHandlers([
            HTTPRequestOpener(request: upgrade.request, auth: nil, streamsBody: false), upgrade, errors,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, errors)
    }

    static func outbound(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func theRequestAsksForAnUpgradeAndNothingElseLeavesBeforeThe101() throws {
        let (channel, errors) = try Self.start()
        let request = try Self.outbound(channel)
        #expect(request.hasPrefix("GET /byst HTTP/1.1\r\n"))
        for field in ["Host: hub:8080", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)",
                      "Sec-WebSocket-Version: 13"] {
            #expect(request.contains("\r\n\(field)\r\n"), "missing \(field)")
        }
        channel.writeAndFlush(ByteBuffer(string: "frame-bytes"), promise: nil)
        #expect(try Self.outbound(channel).isEmpty, "frames left before the 101")

        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
            + "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\nserver-frames"))
        #expect(try Self.outbound(channel) == "frame-bytes")
        #expect(errors.bytes == Array("server-frames".utf8))
        #expect(errors.errors.isEmpty)
        try channel.writeAndFlush(ByteBuffer(string: "more")).wait()
        #expect(try Self.outbound(channel) == "more")
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP 200"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
         "Sec-WebSocket-Accept"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n", "Upgrade"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "Sec-WebSocket-Accept"),
        ("garbage\r\n\r\n", "malformed"),
    ])
    func aWrongAnswerFailsTheLinkAndSendsNothing(_ answer: String, _ reason: String) throws {
        let (channel, errors) = try Self.start()
        _ = try Self.outbound(channel)
        channel.writeAndFlush(ByteBuffer(string: "frame-bytes"), promise: nil)
        try channel.writeInbound(ByteBuffer(string: answer))
        #expect(errors.errors.contains { "\($0)".contains(reason) }, "errors: \(errors.errors)")
        #expect(!channel.isActive)
        #expect(try Self.outbound(channel).isEmpty)
        #expect(errors.bytes.isEmpty)
    }
}
