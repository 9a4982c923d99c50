import BYSTProto
import NIOCore
import NIOWebSocket

/// Between NIOWebSocket's frame codec and a LinkHandler, on both ends of a WebSocket link
/// (PROTOCOL.md §6.4):
///
///   frames in ─▶ WebSocketReceiver's verdict ─▶ binary payloads (unmasked) ─▶ the link, as a byte stream
///                                            └▶ ping: pong · close: close back · violation: close(code)
///   the link's writes ─▶ binary frames of at most 64 KiB (masked with a fresh key per frame by the client)
///   the link closing ─▶ a close frame (1000, or the violation's code), then the connection
///
/// Message boundaries mean nothing to the link: records span frames and frames hold many records.
final class WebSocketLinkStream: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    /// Why the connection is being closed, told to the link (which logs it and closes).
    struct Violation: Error, CustomStringConvertible {
        let code: WebSocketReceiver.CloseCode
        let reason: String
        var description: String { "WebSocket: \(reason) (close \(code.rawValue))" }
    }

    /// The client's upgrade was answered with a good 101: frames may go out from now on.
    struct Upgraded {}

    /// How long a close frame may take to leave before the connection is closed anyway.
    static let closeFrameTimeout: TimeAmount = .seconds(2)

    private let role: WebSocketReceiver.Role
    private var receiver: WebSocketReceiver
    private let clock: () -> Nanoseconds
    /// The code our close frame carries; set by a violation or the peer's close.
    private var closeCode = WebSocketReceiver.CloseCode.normal
    private var closeSent = false
    /// Whether the opening handshake is done (the server's 101 was sent before this handler
    /// exists; the client's waits for `Upgraded`): before it, closing sends no close frame.
    private var open: Bool
    /// Where masked payloads are unmasked, kept: the link copies what it is handed, so by
    /// the next frame nothing else holds it and unmasking allocates nothing. At most the
    /// largest frame accepted (`WebSocketReceiver.maxMessageBytes`), like the link's own
    /// inbound buffer.
    private var unmaskBuffer = ByteBuffer()

    init(role: WebSocketReceiver.Role, clock: @escaping () -> Nanoseconds = Clocks.monotonic) {
        self.role = role
        open = role == .server
        self.clock = clock
        receiver = WebSocketReceiver(role: role, now: clock())
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let header = WebSocketReceiver.Frame(
            opcode: UInt8(webSocketOpcode: frame.opcode), fin: frame.fin, reservedBits: !frame.reservedBits.isEmpty,
            masked: frame.maskKey != nil, length: frame.length)
        switch receiver.receive(header, now: clock()) {
        case .data:
            guard frame.length > 0 else { return }
            context.fireChannelRead(wrapInboundOut(unmasked(frame, context)))
        case .pong:
            context.writeAndFlush(wrapOutboundOut(makeFrame(.pong, unmasked(frame, context), context)), promise: nil)
        case .ignore:
            return
        case .closedByPeer:
            // Echo the peer's status code (RFC 6455 §5.5.1), then close: the link sees the end.
            var payload = unmasked(frame, context)
            closeCode = payload.readInteger(as: UInt16.self).flatMap(WebSocketReceiver.CloseCode.init(rawValue:)) ?? .normal
            close(context: context, mode: .all, promise: nil)
        case .fail(let code, let reason):
            violated(Violation(code: code, reason: reason), context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Upgraded else { return context.fireUserInboundEventTriggered(event) }
        open = true
    }

    /// The frame decoder refuses frames over its size (1009) and malformed control frames (1002).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? NIOWebSocketError else { return context.fireErrorCaught(error) }
        receiver.finish()
        switch error {
        case .invalidFrameLength:
            violated(Violation(code: .messageTooBig, reason: "frame over \(WebSocketReceiver.maxMessageBytes) bytes"), context)
        case .fragmentedControlFrame, .multiByteControlFrameLength:
            violated(Violation(code: .protocolError, reason: "fragmented or oversized control frame"), context)
        }
    }

    /// The link logs the reason and closes, which sends our close frame with `code`.
    private func violated(_ violation: Violation, _ context: ChannelHandlerContext) {
        closeCode = violation.code
        context.fireErrorCaught(violation)
        // Nothing but a LinkHandler is meant to sit above; without one, close here.
        if !closeSent { close(context: context, mode: .all, promise: nil) }
    }

    /// The payload is a slice of the decoder's buffer, which others share: unmasking writes
    /// into a buffer of its own in the same pass (unmasking in place would copy first).
    private func unmasked(_ frame: WebSocketFrame, _ context: ChannelHandlerContext) -> ByteBuffer {
        let data = frame.data
        guard let key = frame.maskKey else { return data }
        unmaskBuffer.clear()
        data.withUnsafeReadableBytes { source in
            _ = unmaskBuffer.writeWithUnsafeMutableBytes(minimumWritableBytes: source.count) { destination in
                WebSocketMask.apply(key: (key[0], key[1], key[2], key[3]), from: source, to: destination)
                return source.count
            }
        }
        return unmaskBuffer
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        // Every frame is a slice of exactly its bytes: the encoder copies what it masks, and
        // a buffer that still spans the whole write batch would be copied whole for each frame.
        // An empty write (a link waiting for its writes to drain) still needs its promise kept in order.
        repeat {
            let length = min(bytes.readableBytes, WebSocketReceiver.sendFrameBytes)
            let slice = bytes.readSlice(length: length) ?? ByteBuffer()
            let last = bytes.readableBytes == 0
            context.write(wrapOutboundOut(makeFrame(.binary, slice, context)), promise: last ? promise : nil)
        } while bytes.readableBytes > 0
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, open, !closeSent, context.channel.isActive else { return context.close(mode: mode, promise: promise) }
        closeSent = true
        receiver.finish()
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.writeInteger(closeCode.rawValue)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(makeFrame(.connectionClose, payload, context)), promise: written)
        // A peer that reads nothing (its window full) must not keep the connection open.
        let timeout = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeFrameTimeout) {
            context.close(mode: .all, promise: nil)
        }
        written.futureResult.assumeIsolated().whenComplete { _ in
            timeout.cancel()
            context.close(mode: .all, promise: promise)
        }
    }

    /// Client frames are masked with a fresh random key each (RFC 6455 §5.3); server frames never.
    private func makeFrame(_ opcode: WebSocketOpcode, _ data: ByteBuffer, _ context: ChannelHandlerContext) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: role == .client ? .random() : nil, data: data)
    }
}
