// The node's link listeners (`listen`, `http_listen`, `https_listen`): each has an accept
// thread (LinkAcceptor) that refuses sources over their rate (AcceptGate); the connections it
// admits become channels on the event loop, pending until their handshake completes
// (LinkAdmission), then responder links (LinkHandler) — through HTTPServerFrontEnd, with TLS
// for `https_listen`. Bound at start, or with `[ha]` while the gateway is active for a port.
// Event loop only.
import BYSTProto
import NIOCore
import NIOPosix
import NIOSSL

final class LinkListeners {
    private unowned let node: Node
    private let serverTLS: NIOSSLContext?
    private var acceptors: [LinkAcceptor] = []
    /// Measures how late the event loop runs, for the accept gate (while listeners exist).
    private var loopProbe: LoopLagProbe?

    init(node: Node, serverTLS: NIOSSLContext?) {
        self.node = node
        self.serverTLS = serverTLS
    }

    var isBound: Bool { !acceptors.isEmpty }

    /// Binds `listen`, `http_listen` and `https_listen`.
    func bind() -> [EventLoopFuture<Void>] {
        var binds: [EventLoopFuture<Void>] = []
        let config = node.config
        for address in config.listen {
            binds.append(bind(address, what: "link listener") { [node] channel, descriptor in
                let link = node.makeResponderLink(binding: [])
                // Nothing sits between the link and its socket: records may go to it directly.
                link.channelDescriptor = descriptor
                try channel.pipeline.syncOperations.addHandler(link)
            })
        }
        for (address, tls) in config.http.listen.map({ ($0, false) }) + config.http.tlsListen.map({ ($0, true) }) {
            let what = "\(tls ? "HTTPS" : "HTTP") link listener (path \(config.http.path))"
            binds.append(bind(address, what: what) { [node, serverTLS] channel, _ in
                if tls, let serverTLS { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverTLS)) }
                try channel.pipeline.syncOperations.addHandler(HTTPServerFrontEnd(node: node))
            })
        }
        return binds
    }

    /// A link listener: its own accept thread (LinkAcceptor) refuses sources over their rate;
    /// the connections it admits become channels here, pending until their handshake completes.
    /// `initialize` gets the channel and its socket's descriptor (owned by the channel).
    private func bind(_ address: HostPort, what: String, initialize: @escaping (Channel, Int32) throws -> Void)
        -> EventLoopFuture<Void> {
        let acceptor: LinkAcceptor
        do { acceptor = try LinkAcceptor.bind(address) } catch { return node.eventLoop.makeFailedFuture(error) }
        let loop = node.eventLoop
        let bound = NIOLoopBound(initialize, eventLoop: loop)
        let boundNode = NIOLoopBound(node, eventLoop: loop)
        let timeout = node.config.deadLinkTimeout
        let gate = node.acceptGate
        if loopProbe == nil { loopProbe = gate.probeLoop(loop) }
        acceptor.start(gate: gate) { fd in
            // On the accept thread: the channel is made here, set up on the event loop.
            ClientBootstrap(group: loop)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try Node.configureLinkChannel(channel, timeout: timeout)
                        boundNode.value.trackPendingHandshake(channel)
                        try bound.value(channel, fd)
                    }
                }
                .withConnectedSocket(fd)
                .whenComplete { _ in gate.setUp() }
        }
        acceptors.append(acceptor)
        node.logger.info("listening: \(what) on \(address)")
        return loop.makeSucceededFuture(())
    }

    /// Stops accepting (HA stepped down); links already up stay. The loop-lag probe runs on,
    /// so the gate knows the loop's lateness when listeners are bound again.
    func close() {
        for acceptor in acceptors { acceptor.close() }
        acceptors.removeAll()
    }

    /// Shutdown: closed, and the probe stopped.
    func stop() {
        close()
        loopProbe?.cancel()
        loopProbe = nil
    }
}
