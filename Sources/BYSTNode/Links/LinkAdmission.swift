// Admission of connections to the link listeners (byst:// and HTTP(S)), before and during
// their handshake (docs/OPERATIONS.md, "Limits"):
//
//   LinkAcceptor thread ▸ AcceptGate (AcceptGate.swift): refused before anything is read
//        ─▶ event loop: pending table (pending_handshakes; full: close the oldest)
//        ─▶ LinkHandler / HTTPServerFrontEnd ─▶ handshake done or closed ─▶ leaves the table
//                                                 └─ authenticated: its source becomes known
//
// The decisions are BYSTProto's (PendingHandshakeTable, AcceptPolicy); this file holds the
// channels and applies them.
import BYSTProto
import Logging
import NIOCore

/// The connections on the link listeners whose handshake has not completed.
///
/// **Invariants**: used on the node's event loop only; `channels` holds exactly the
/// channels in `pending`.
final class LinkAdmission {
    private var pending: PendingHandshakeTable<ObjectIdentifier>
    private var channels: [ObjectIdentifier: Channel] = [:]

    init(limits: LimitsConfig) {
        pending = PendingHandshakeTable(capacity: limits.pendingHandshakes)
    }

    var pendingCount: Int { pending.count }

    /// Starts tracking an accepted connection; returns the ones it pushed out (still open).
    func track(_ channel: Channel) -> [Channel] {
        let id = ObjectIdentifier(channel)
        let evicted = pending.admit(id)
        channels[id] = channel
        return evicted.compactMap { channels.removeValue(forKey: $0) }
    }

    /// The connection completed its handshake or closed.
    func settle(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        guard channels.removeValue(forKey: id) != nil else { return }
        pending.remove(id)
    }
}

extension Node {
    /// A connection set up on a link listener: it counts as pending until its handshake
    /// completes (`handshakeSettled`) or it closes. The oldest pending ones make room.
    func trackPendingHandshake(_ channel: Channel) {
        for evicted in admission.track(channel) {
            handshakeFailed(.overloaded)
            limitHit(.pendingHandshakes, "closing the oldest unfinished connection (\(LinkHandler.describe(evicted.remoteAddress))): \(config.limits.pendingHandshakes) pending handshakes")
            evicted.close(promise: nil)
        }
        channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in self?.admission.settle(channel) }
    }

    /// The connection's handshake completed (or it was proven to belong to one that did).
    /// `authenticated`: by a key of ours — its source becomes known to the accept policy.
    func handshakeSettled(_ channel: Channel, authenticated: Bool = false) {
        admission.settle(channel)
        if authenticated, let source = HandshakeSource(channel.remoteAddress) { acceptGate.trust(source) }
    }

    /// A cap of `[limits]` was reached: counted, and logged (rate-limited).
    func limitHit(_ limit: ResourceLimit, _ message: @autoclosure () -> String, level: Logger.Level = .warning,
                  logger: Logger? = nil) {
        metrics.limitHit(limit)
        logLimiter.log(.limit(limit), level: level, "limit \(limit.rawValue): \(message())", to: logger ?? self.logger)
    }
}

extension HandshakeSource {
    /// The source of a connection from its remote address; nil for Unix sockets.
    init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let ipv4)?:
            self.init(ipv4: UInt32(bigEndian: ipv4.address.sin_addr.s_addr))
        case .v6(let ipv6)?:
            let bytes = withUnsafeBytes(of: ipv6.address.sin6_addr) { Array($0) }
            self.init(addressBytes: bytes)
        default:
            return nil
        }
    }
}
