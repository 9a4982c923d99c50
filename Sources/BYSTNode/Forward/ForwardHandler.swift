// A port-forwarded TCP connection joined to one stream (README "Port forwarding"):
//
//   near side: client ─▶ [[forward]] listener ─▶ ForwardHandler ─openStream(target)─▶ session
//   far side:  session ─streamOpened─▶ Node (allow_targets) ─connect─▶ ForwardHandler ─▶ target
//
// Backpressure both ways: socket reads stop while the stream's send buffer is full
// (autoRead off, reads issued by hand); delivered bytes are acknowledged to the peer
// (`consumed`) only once the socket has written them, so a slow reader closes the window.
import BYSTProto
import NIOCore
import NIOPosix

final class ForwardHandler: ChannelInboundHandler, StreamEndpoint {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: SessionRuntime
    private var streamID: UInt32?
    /// Near side: the target to open the stream towards once the client connects.
    private let target: String?
    private var context: ChannelHandlerContext?
    /// Bytes read from the socket that the stream could not take yet.
    private var unsent: ByteBuffer?
    /// Far side: stream bytes that arrived before the connection to the target was up.
    private var early: [ByteBuffer] = []
    private var active = false
    /// The socket was up once: after it closes, late stream bytes are dropped, not queued.
    private var wasActive = false
    private var errorSeen = false
    /// The client/target stopped sending (we sent our FIN).
    private var inputClosed = false
    /// The peer finished: shut our output once every delivered byte is written.
    private var peerFinished = false
    /// Both directions are done: close once every delivered byte is written.
    private var closeWhenDrained = false
    private var pendingWrites = 0

    /// Near side: opens a stream when the client connects.
    init(session: SessionRuntime, target: String) {
        self.session = session
        self.target = target
    }

    /// Far side: joined to a stream the peer opened.
    init(session: SessionRuntime, streamID: UInt32) {
        self.session = session
        self.streamID = streamID
        self.target = nil
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        active = true
        wasActive = true
        // Far side whose stream was reset while the connection to the target was being made.
        if target == nil, streamID == nil { return resetConnection() }
        if let target {
            guard let id = session.openStream(target: target, endpoint: self) else {
                // Counted and logged (rate-limited) by the session: streams_per_session.
                session.node.logger.debug("forward: no stream for this connection; refusing it")
                return resetConnection()
            }
            streamID = id
        }
        for bytes in early { write(bytes) }
        early.removeAll()
        closeIfDrained()
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let id = streamID else { return }
        var bytes = unwrapInboundIn(data)
        // One read() may deliver several buffers: keep their order behind what is waiting.
        if var waiting = unsent {
            waiting.writeBuffer(&bytes)
            unsent = waiting
            return
        }
        _ = session.send(&bytes, on: id)
        if bytes.readableBytes > 0 { unsent = bytes }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unsent == nil, !inputClosed { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            if unsent == nil, let id = streamID { session.finish(id) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        if let id = streamID, session.machine.isOpen(id) {
            if errorSeen {
                // A reset or failed socket: abort the stream both ways.
                session.reset(id, code: .cancelled)
                streamID = nil
            } else if !inputClosed {
                // A clean close is an end of data (the EOF may not have been reported
                // separately once our output was shut): finish our direction.
                inputClosed = true
                if unsent == nil { session.finish(id) }
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errorSeen = true
        context.close(promise: nil)
    }

    // MARK: StreamEndpoint

    func streamData(_ bytes: ByteBuffer) {
        if active {
            write(bytes)
        } else if wasActive {
            // The socket is gone; acknowledge and drop, as TCP would discard them.
            if let id = streamID { session.consumed(bytes.readableBytes, on: id) }
        } else {
            early.append(bytes)
        }
    }

    func streamFinished() {
        peerFinished = true
        closeIfDrained()
    }

    func streamReset(_ code: Frame.ResetCode) {
        if let target, let hint = Self.refusalHint(code) {
            // The near side learns why its client was reset (rate-limited: a client may retry fast).
            session.node.logLimiter.log(.streamRefused, level: .info,
                                        "forward to \(target): the peer refused the stream: \(code) (\(hint))", to: session.logger)
        } else {
            session.logger.debug("stream \(streamID.map(String.init) ?? "?") reset: \(code)")
        }
        streamID = nil
        early.removeAll()
        resetConnection()
    }

    /// What the operator of the near side can do about a refusal, or nil for an ordinary end.
    static func refusalHint(_ code: Frame.ResetCode) -> String? {
        switch code {
        case .targetNotAllowed: "the target is not in that peer's allow_targets for us"
        case .connectFailed: "that peer could not resolve or connect to the target"
        case .tooManyStreams: "that peer's streams_per_session is reached"
        default: nil
        }
    }

    func streamWritable() {
        guard let id = streamID, var pending = unsent else { return }
        _ = session.send(&pending, on: id)
        if pending.readableBytes > 0 {
            unsent = pending
            return
        }
        unsent = nil
        if inputClosed { session.finish(id) } else { context?.read() }
    }

    func streamClosed() {
        closeWhenDrained = true
        closeIfDrained()
    }

    // MARK: Helpers

    private func write(_ bytes: ByteBuffer) {
        guard let context, let id = streamID else { return }
        let count = bytes.readableBytes
        pendingWrites += 1
        context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { [self] result in
            pendingWrites -= 1
            if case .success = result { session.consumed(count, on: id) }
            closeIfDrained()
        }
    }

    /// Half-closes or closes once every delivered byte has been written: closing earlier
    /// would drop bytes still queued in the channel.
    private func closeIfDrained() {
        guard active, pendingWrites == 0, let context else { return }
        if closeWhenDrained {
            context.close(promise: nil)
        } else if peerFinished {
            context.close(mode: .output, promise: nil)
        }
    }

    /// Closes the client connection with a TCP RST, so a failure at the far end reaches the
    /// near client as a reset, not as a clean end of data.
    private func resetConnection() {
        guard let context else { return }
        guard let options = context.channel as? SocketOptionProvider else { return context.close(promise: nil) }
        options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
