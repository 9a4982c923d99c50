import BYSTProto
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import BYSTNode

/// WebSocketLinkStream under NIOWebSocket's codec on an embedded channel: what reaches the
/// link, what goes back, and how each kind of hostile frame ends the connection
/// (PROTOCOL.md §6.4).
@Suite struct WebSocketLinkStreamTests {
    /// Stands where the LinkHandler stands: collects the byte stream and the errors.
    final class LinkStandIn: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        var errors: [any Error] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += Array(buffer: unwrapInboundIn(data))
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            errors.append(error)
            // As LinkHandler.fail does: the link closes, which sends the close frame.
            context.close(promise: nil)
        }
    }

    struct Peer {
        let channel: EmbeddedChannel
        let link: LinkStandIn

        init(role: WebSocketReceiver.Role) throws {
            channel = EmbeddedChannel()
            link = LinkStandIn()
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: WebSocketReceiver.maxMessageBytes)),
                WebSocketFrameEncoder(), WebSocketLinkStream(role: role), link,
            ])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            if role == .client { channel.pipeline.fireUserInboundEventTriggered(WebSocketLinkStream.Upgraded()) }
        }

        func send(_ frames: [WebSocketFrame]) throws {
            try channel.writeInbound(try WebSocketWire.encode(frames))
        }

        /// What this side wrote, as frames.
        func written() throws -> [WebSocketFrame] {
            var out = ByteBuffer()
            while var bytes = try channel.readOutbound(as: ByteBuffer.self) { out.writeBuffer(&bytes) }
            return try WebSocketWire.decode(out)
        }

        /// The close code this side sent, and whether its connection is closed.
        func closed() throws -> (code: UInt16?, isClosed: Bool) {
            let close = try written().last { $0.opcode == .connectionClose }
            return (close.flatMap(WebSocketWire.closeCode), !channel.isActive)
        }
    }

    @Test func bytesFlowAcrossMessagesFragmentsAndPings() throws {
        let peer = try Peer(role: .server)
        try peer.send([
            WebSocketWire.binary(Array("abc".utf8)),
            WebSocketWire.binary(Array("de".utf8), fin: false),
            WebSocketWire.binary(Array("PING".utf8), opcode: .ping),
            WebSocketWire.binary(Array("fg".utf8), fin: true, opcode: .continuation),
            WebSocketWire.binary([]),
        ])
        #expect(peer.link.bytes == Array("abcdefg".utf8))
        let written = try peer.written()
        #expect(written.count == 1 && written[0].opcode == .pong && written[0].maskKey == nil)
        #expect(written.first.map { Array(buffer: $0.unmaskedData) } == Array("PING".utf8))
        #expect(peer.channel.isActive)
    }

    @Test func anUnmaskedClientFrameIsClosedWith1002() throws {
        let peer = try Peer(role: .server)
        try peer.send([WebSocketWire.binary([1, 2, 3], masked: false)])
        let (code, isClosed) = try peer.closed()
        #expect(code == 1002 && isClosed)
        #expect(peer.link.bytes.isEmpty)
        #expect(peer.link.errors.contains { "\($0)".contains("unmasked") })
    }

    @Test func aTextFrameIsClosedWith1003() throws {
        let peer = try Peer(role: .server)
        try peer.send([WebSocketWire.binary(Array("hello".utf8), opcode: .text)])
        let (code, isClosed) = try peer.closed()
        #expect(code == 1003 && isClosed)
        #expect(peer.link.bytes.isEmpty)
    }

    @Test func anOversizedFrameIsClosedWith1009() throws {
        let peer = try Peer(role: .server)
        // The decoder refuses it from its header: nothing of it is buffered.
        let oversized = [UInt8](repeating: 7, count: WebSocketReceiver.maxMessageBytes + 1)
        try peer.send([WebSocketWire.binary(oversized)])
        let (code, isClosed) = try peer.closed()
        #expect(code == 1009 && isClosed)
        #expect(peer.link.bytes.isEmpty)
    }

    @Test func aFragmentedMessageOverTheLimitIsClosedWith1009() throws {
        let peer = try Peer(role: .server)
        let piece = [UInt8](repeating: 1, count: WebSocketReceiver.maxMessageBytes / 2)
        try peer.send([
            WebSocketWire.binary(piece, fin: false),
            WebSocketWire.binary(piece, fin: false, opcode: .continuation),
            WebSocketWire.binary([9], fin: true, opcode: .continuation),
        ])
        let (code, isClosed) = try peer.closed()
        #expect(code == 1009 && isClosed)
        #expect(peer.link.bytes.count == WebSocketReceiver.maxMessageBytes, "the fragments within the limit went on as they came")
    }

    @Test func aContinuationWithoutAMessageIsClosedWith1002() throws {
        let peer = try Peer(role: .server)
        try peer.send([WebSocketWire.binary([1], opcode: .continuation)])
        #expect(try peer.closed() == (1002, true))
    }

    @Test func aPingFloodIsClosedWith1008AfterTheBurst() throws {
        let peer = try Peer(role: .server)
        try peer.send((0..<(WebSocketReceiver.controlBurst + 10)).map { _ in WebSocketWire.binary([], opcode: .ping) })
        let written = try peer.written()
        #expect(written.filter { $0.opcode == .pong }.count == WebSocketReceiver.controlBurst)
        #expect(written.last.flatMap(WebSocketWire.closeCode) == 1008)
        #expect(!peer.channel.isActive)
    }

    @Test func thePeersCloseIsAnsweredAndEndsTheConnection() throws {
        let peer = try Peer(role: .server)
        var payload = ByteBuffer()
        payload.writeInteger(UInt16(1000))
        try peer.send([WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)])
        #expect(try peer.closed() == (1000, true))
        #expect(peer.link.errors.isEmpty)
    }

    @Test func theLinkClosingSendsANormalCloseFrame() throws {
        let peer = try Peer(role: .server)
        peer.channel.close(promise: nil)
        peer.channel.embeddedEventLoop.run()
        #expect(try peer.closed() == (1000, true))
    }

    @Test func serverWritesAreUnmaskedBinaryFramesOfAtMost64KiB() throws {
        let peer = try Peer(role: .server)
        let bytes = (0..<(150 << 10)).map { UInt8(truncatingIfNeeded: $0) }
        try peer.channel.writeOutbound(ByteBuffer(bytes: bytes))
        let frames = try peer.written()
        #expect(frames.map(\.length) == [64 << 10, 64 << 10, 22 << 10])
        #expect(frames.allSatisfy { $0.opcode == .binary && $0.fin && $0.maskKey == nil })
        #expect(frames.flatMap { Array(buffer: $0.data) } == bytes)
    }

    @Test func clientWritesAreMaskedWithAFreshKeyPerFrame() throws {
        let peer = try Peer(role: .client)
        let bytes = (0..<(200 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try peer.channel.writeOutbound(ByteBuffer(bytes: bytes))
        let frames = try peer.written()
        #expect(frames.count == 4)
        #expect(frames.allSatisfy { $0.opcode == .binary && $0.maskKey != nil })
        #expect(Set(frames.compactMap { $0.maskKey.map { Array($0) } }).count == frames.count, "a mask key was used twice")
        #expect(frames.flatMap { Array(buffer: $0.unmaskedData) } == bytes)
    }

    /// Sits where the encoder takes frames: what each frame's buffer holds besides its payload.
    final class FrameRecorder: ChannelOutboundHandler {
        typealias OutboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame
        var spare: [Int] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let frame = unwrapOutboundIn(data)
            spare.append(frame.data.capacity - frame.data.readableBytes)
            context.write(data, promise: promise)
        }
    }

    /// The encoder copies what it masks, all of the buffer's storage the frame's slice spans:
    /// a frame that spanned the whole write batch would copy the batch once more per frame.
    @Test func eachClientFrameSpansOnlyItsOwnBytes() throws {
        let channel = EmbeddedChannel()
        let recorder = FrameRecorder()
        try channel.pipeline.syncOperations.addHandlers([WebSocketFrameEncoder(), recorder, WebSocketLinkStream(role: .client)])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        channel.pipeline.fireUserInboundEventTriggered(WebSocketLinkStream.Upgraded())
        // As the LinkHandler writes: a batch buffer with room to spare beyond its bytes.
        for length in [200 << 10, 1000] {
            var batch = channel.allocator.buffer(capacity: 300 << 10)
            batch.writeBytes((0..<length).map { UInt8(truncatingIfNeeded: $0) })
            try channel.writeOutbound(batch)
        }
        #expect(recorder.spare == [0, 0, 0, 0, 0])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aClientRefusesMaskedServerFrames() throws {
        let peer = try Peer(role: .client)
        try peer.send([WebSocketWire.binary([1, 2], masked: true)])
        #expect(try peer.closed() == (1002, true))
    }
}
