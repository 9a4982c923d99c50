/// Identifies a link within a node (assigned by the runtime, not on the wire).
public struct LinkID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: Int
    public init(_ rawValue: Int) { self.rawValue = rawValue }
    public static func < (a: LinkID, b: LinkID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "link#\(rawValue)" }
}

/// Monotonic time in nanoseconds, supplied by the caller (never read inside the core).
public typealias Nanoseconds = UInt64

/// Tunables of a session; both ends use their own values (PROTOCOL.md §5.3).
public struct SessionConfig: Sendable {
    /// Bytes a stream's peer may send beyond what our application consumed: one stream moves
    /// at most this per round trip of its acknowledgements (1 MiB: ≈ 420 Mbit/s at 20 ms).
    public var streamWindow: UInt64 = 1 << 20
    /// Bytes all streams together may have outstanding; several times the stream window so a
    /// few stalled streams cannot starve the rest.
    public var sessionWindow: UInt64 = 16 << 20
    /// Bytes an application may queue on a stream before `send` accepts no more.
    public var sendBufferLimit: Int = 1 << 20
    /// Bytes all streams together may hold queued or unacknowledged: without it a peer that
    /// opens many streams and never acknowledges could make us hold `maxStreams` send buffers.
    public var sessionSendBufferLimit: Int = 16 << 20
    public var keepaliveInterval: Duration = .seconds(1)
    /// A link that received nothing for this long is dead.
    public var deadLinkTimeout: Duration = .seconds(5)
    /// How often an idle link is pinged, where both sides offered `LinkFeatures.idleKeepalive`
    /// (PROTOCOL.md §5.5); both sides must use the same value.
    public var idleKeepaliveInterval: Duration = SessionConfig.defaultIdleKeepaliveInterval
    public static let defaultIdleKeepaliveInterval: Duration = .seconds(15)
    /// How long a session without links keeps its streams waiting for a reconnect.
    public var linger: Duration = .seconds(60)
    public var maxStreams = 4096
    /// Packets waiting for one link, in bytes: beyond it new packets are dropped rather than
    /// delayed (TCP inside the tunnel reacts to a drop; it cannot react to a growing queue).
    /// 1 MiB holds 16 GSO super-packets (256 KiB, 4 of them, cost 7 % throughput and 30× the
    /// retransmits in docs/perf-log/2026-11-27-tun-speed-issue-7.md, "TUN offloads") — about
    /// 700 wire-size packets, like a NIC's queue.
    public var packetQueueBytes = 1024 * 1024
    /// Striping (PROTOCOL.md §5.3): a stream holding at least this many bytes queued or
    /// unacknowledged may use other links than its own; below it (interactive traffic) it
    /// stays on its link and its small writes wait behind nothing.
    public var stripeThreshold = 64 * 1024
    /// Striping: another link takes a stream's bytes only when it would deliver them this much
    /// sooner than the stream's own link. Fast links drain a full stream window in a few
    /// milliseconds; spreading such a stream would buy nothing and cost reordering.
    public var stripeHomeBias: Duration = .milliseconds(8)

    public init() {}
}

extension Duration {
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(seconds, 0)) &* 1_000_000_000 &+ UInt64(max(attoseconds, 0) / 1_000_000_000)
    }
}

public enum SessionError: Error, Equatable, Sendable {
    case frame(FrameError)
    /// The peer sent beyond the credit we gave it.
    case flowControlViolation(stream: UInt32)
    /// Data past a stream's FIN, or a FIN that moves.
    case finalOffsetViolation(stream: UInt32)
    /// The peer made one stream hold many small frames out of order (`ReorderBuffer.freeChunks`).
    case tooManyHeldFrames(stream: UInt32)
    /// A stream id of the wrong parity (ids are odd from the initiator, even from the responder).
    case badStreamID(UInt32)
}
