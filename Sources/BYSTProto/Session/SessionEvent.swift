import NIOCore

/// What a `SessionMachine` tells its runtime.
public enum SessionEvent: Equatable, Sendable {
    /// The peer opened stream `id` towards `target`.
    case streamOpened(id: UInt32, target: String)
    /// In-order, deduplicated stream bytes; call `consumed(_:on:)` once they are written out.
    case streamData(id: UInt32, bytes: ByteBuffer)
    /// The peer finished sending on `id` (after all its data).
    case streamFinished(id: UInt32)
    /// The stream was aborted (by the peer, or because the session expired).
    case streamReset(id: UInt32, code: Frame.ResetCode)
    /// `send` refused bytes earlier; it has room again.
    case streamWritable(id: UInt32)
    /// Both directions of the stream are done and acknowledged; its state is gone.
    case streamClosed(id: UInt32)
    /// Nothing arrived on this link for the dead-link timeout, or it did not finish retiring
    /// within it: close it. In the first case, where the peer reads close reasons, a
    /// `linkClosing` frame is queued first: write it, then close.
    case linkDead(LinkID)
    /// The peer closes this link, for `reason`: close it too.
    case peerClosingLink(LinkID, LinkCloseReason)
    /// The peer is shutting down.
    case goAway
    /// No link came back within the linger time: the session is over.
    case expired
    /// An IP packet from the peer's packet channel.
    case packet(ByteBuffer)
    /// An offloaded packet: virtio-net header (10 bytes), then the packet (PROTOCOL.md §5.4).
    case offloadPacket(ByteBuffer)
    /// A sequenced packet (packet striping, PROTOCOL.md §5.4): the runtime's data plane puts
    /// it back in order; `offloaded`: the bytes start with a virtio-net header.
    case sequencedPacket(seq: UInt64, ByteBuffer, offloaded: Bool)
    /// A keepalive ping on `link` was answered after `rtt` (one sample; the smoothed value
    /// is in `linkStatus`).
    case rttMeasured(link: LinkID, rtt: Duration)
    /// A resource cap of `SessionConfig` refused something (counted and logged by the runtime).
    case limitReached(SessionLimit)
}

/// The caps a `SessionMachine` enforces on behalf of its peer.
public enum SessionLimit: Sendable, Equatable {
    /// The peer opened a stream beyond `maxStreams`: it was reset (`tooManyStreams`).
    case streams
    /// `send` was cut short because all streams together hold `sessionSendBufferLimit`
    /// (reported once per episode, not per call).
    case sessionBuffer
}
