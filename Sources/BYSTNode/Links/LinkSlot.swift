import BYSTProto
import Logging
import NIOCore
import NIOPosix

/// One of a peer's N dialed links: connects, and after any failure reconnects with
/// exponential backoff and jitter (100 ms doubling to 10 s, ±20 %), until stopped.
final class LinkSlot {
    unowned let peer: PeerRuntime
    unowned let session: SessionRuntime
    let index: UInt16
    let address: HostPort
    private var attempts = 0
    private var stopped = false
    private var reconnect: Scheduled<Void>?
    private var channel: Channel?

    static let initialBackoff: Int64 = 100_000_000
    static let maximumBackoff: Int64 = 10_000_000_000

    init(peer: PeerRuntime, session: SessionRuntime, index: UInt16, address: HostPort) {
        self.peer = peer
        self.session = session
        self.index = index
        self.address = address
    }

    func dial() {
        guard !stopped else { return }
        let node = peer.node
        let hello = LinkHello(
            timestamp: Clocks.wall(), sessionID: session.sessionID, linkIndex: index, features: [],
            maxRecordPayload: UInt32(node.recordLimits.maxPayload), nodeName: node.config.name)
        let initiator = LinkInitiator(psk: peer.key, hello: hello, limits: node.recordLimits)
        let handler = LinkHandler(id: node.nextLinkID(), node: node, initiator: initiator, session: session, slot: self,
                                  linkIndex: index)
        let bound = NIOLoopBound(handler, eventLoop: node.eventLoop)
        let timeout = node.config.deadLinkTimeout
        let bootstrap = node.clientBootstrap()
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Node.configureLinkChannel(channel, timeout: timeout)
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
        let connect = AddressResolver.resolve(address, on: node.eventLoop).assumeIsolated()
            .flatMap { bootstrap.connect(to: $0) }.nonisolated()
        let slot = NIOLoopBound(self, eventLoop: node.eventLoop)
        connect.whenComplete { result in
            let slot = slot.value
            switch result {
            case .success(let channel): slot.channel = channel
            case .failure(let error):
                slot.peer.node.logger.debug("dial \(slot.address) failed: \(error)", metadata: ["peer": "\(slot.peer.config.name)"])
                slot.scheduleReconnect()
            }
        }
    }

    func linkEstablished(_ link: LinkHandler) { attempts = 0 }

    func linkClosed(_ link: LinkHandler) {
        channel = nil
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !stopped, reconnect == nil else { return }
        peer.reconnects += 1
        let base = min(Self.initialBackoff << min(attempts, 20), Self.maximumBackoff)
        attempts += 1
        let jittered = Int64(Double(base) * Double.random(in: 0.8...1.2))
        reconnect = peer.node.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(jittered)) { [self] in
            reconnect = nil
            dial()
        }
    }

    /// Stops reconnecting; the link itself is closed by `Node.shutdown` after its grace period.
    func stop() {
        stopped = true
        reconnect?.cancel()
    }
}
