// The node's port forwards (README "Port forwarding"): the `[[forward]]` listeners, whose
// connections become streams to a peer, and the connections to the targets that peers'
// streams were allowed to reach (the node decides that: Node.acceptStream). Event loop only.
//
//   [[forward]] listener ─▶ ForwardHandler(near) ─▶ the peer's session for new streams
//   allowed stream ─▶ connect(target) ─▶ ForwardHandler(far) ─▶ target
import BYSTProto
import Logging
import NIOCore
import NIOPosix

final class ForwardService {
    /// Listeners by address, so a reload can close or add them one by one.
    private var listeners: [HostPort: Channel] = [:]
    /// Per address, the latest bind or removal (`bumpGeneration`).
    private var generations: [HostPort: UInt64] = [:]
    /// The session a new stream to the named peer opens in (nil: no session yet).
    private let sessionForNewStream: (String) -> SessionRuntime?
    private let eventLoop: EventLoop
    private let logger: Logger

    init(eventLoop: EventLoop, logger: Logger, sessionForNewStream: @escaping (String) -> SessionRuntime?) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.sessionForNewStream = sessionForNewStream
    }

    /// Binds `forward`'s listener; its connections become streams to the peer. A bind that
    /// completes after its forward was removed (a reload, shutdown) closes again.
    func listen(_ forward: ForwardConfig) -> EventLoopFuture<Void> {
        let what = "forward \(forward.listen) → \(forward.peer):\(forward.target)"
        let logger = self.logger
        let sessions = NIOLoopBound(sessionForNewStream, eventLoop: eventLoop)
        let generation = bumpGeneration(of: forward.listen)
        // Reads are issued by the handler, while the stream has room (backpressure).
        return TCPListener.bind(forward.listen, on: eventLoop, autoRead: false) { channel in
            guard let session = sessions.value(forward.peer) else {
                logger.debug("forward \(forward.listen): no session with peer '\(forward.peer)' yet; refusing connection")
                channel.close(promise: nil)
                return
            }
            try channel.pipeline.syncOperations.addHandler(ForwardHandler(session: session, target: forward.target.description))
        }
        .assumeIsolated()
        .map { [self] channel in
            guard generations[forward.listen] == generation else { return channel.close(promise: nil) }
            logger.info("listening: \(what) on \(forward.listen)")
            listeners[forward.listen] = channel
        }
        .nonisolated()
    }

    /// A listener for `address` is being bound, or none is wanted any more: a bind under way
    /// for it is stale from now on.
    private func bumpGeneration(of address: HostPort) -> UInt64 {
        let next = (generations[address] ?? 0) + 1
        generations[address] = next
        return next
    }

    /// A reload: closes the forwards that went away or changed, then binds the new ones (a
    /// changed one once its old listener has let go of the port); a summary or "".
    func reload(old: [ForwardConfig], new: [ForwardConfig]) -> String {
        let oldByListen = Dictionary(uniqueKeysWithValues: old.map { ($0.listen, $0) })
        let newByListen = Dictionary(uniqueKeysWithValues: new.map { ($0.listen, $0) })
        var closing: [HostPort: EventLoopFuture<Void>] = [:]
        var closed = 0
        for forward in old where newByListen[forward.listen] != forward {
            closed += 1
            _ = bumpGeneration(of: forward.listen)
            closing[forward.listen] = listeners.removeValue(forKey: forward.listen)?.close().recover { _ in }
        }
        let opening = new.filter { oldByListen[$0.listen] != $0 }
        for forward in opening {
            (closing[forward.listen] ?? eventLoop.makeSucceededVoidFuture()).assumeIsolated()
                .flatMap { [self] in listen(forward) }
                .whenFailure { [logger] error in logger.error("reload: forward \(forward.listen): \(error)") }
        }
        guard closed + opening.count > 0 else { return "" }
        return "forwards: \(opening.count) bound, \(closed) closed"
    }

    /// Closes every listener (shutdown); the connections they made live on as streams end.
    func closeAll() -> [EventLoopFuture<Void>] {
        for address in Array(generations.keys) { _ = bumpGeneration(of: address) }
        defer { listeners.removeAll() }
        return listeners.values.map { $0.close().recover { _ in } }
    }

    /// Connects stream `id` of `session`, which asked for `target` (`address`, allowed), to it;
    /// the stream is reset if the connection fails.
    func connect(_ id: UInt32, to address: HostPort, target: String, in session: SessionRuntime, bootstrap: ClientBootstrap) {
        let handler = ForwardHandler(session: session, streamID: id)
        session.register(handler, for: id)
        let bound = NIOLoopBound(handler, eventLoop: eventLoop)
        let sessionBound = NIOLoopBound(session, eventLoop: eventLoop)
        let logger = self.logger
        let peerName = session.peer.config.name
        let bootstrap = bootstrap
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
        AddressResolver.resolve(address, on: eventLoop).assumeIsolated()
            .flatMap { bootstrap.connect(to: $0) }
            .whenFailure { error in
                logger.debug("forward to \(target) for peer '\(peerName)' failed: \(error)")
                sessionBound.value.reset(id, code: .connectFailed)
            }
    }
}
