import BYSTProto
import NIOCore

/// What one flood run does (validated by the command).
struct FloodOptions: Sendable {
    enum Mode: String, CaseIterable, Sendable {
        /// Mostly bogus handshakes, some junk bytes, junk HTTP heads and silent connections.
        case mixed
        /// Bogus message 1s only.
        case handshake
        /// Random bytes.
        case junk
        /// Connect and send nothing.
        case silent
        /// An HTTP head that never ends, or one too large.
        case http
    }

    enum Kind: Int, CaseIterable, Sendable {
        case handshake, keyedHandshake, junk, silent, http
    }

    var target: SocketAddress
    var rate: Int
    var duration: Duration
    var maxOpen: Int
    var mode: Mode
    var keyID: KeyID?
    var sources: [SocketAddress]
    var hold: Duration

    /// The kind of connection number `index`: `mixed` is 6 handshakes (half with --key-id when
    /// given), 2 junk, 1 silent, 1 HTTP in every 10.
    func kind(_ index: Int) -> Kind {
        switch mode {
        case .handshake: return keyID != nil && index % 2 == 1 ? .keyedHandshake : .handshake
        case .junk: return .junk
        case .silent: return .silent
        case .http: return .http
        case .mixed:
            switch index % 10 {
            case 0, 2, 4: return .handshake
            case 1, 3, 5: return keyID != nil ? .keyedHandshake : .handshake
            case 6, 7: return .junk
            case 8: return .silent
            default: return .http
            }
        }
    }
}

/// Counts of one run (summed over the threads).
struct FloodResult: Sendable {
    /// Connections started; established (the node's kernel completed the TCP handshake, so
    /// the node had to accept and judge it); failed before that.
    var started = 0
    var connected = 0
    var failed = 0
    /// Established connections by kind (`FloodOptions.Kind.rawValue`).
    var byKind = [Int](repeating: 0, count: FloodOptions.Kind.allCases.count)
    /// Closed or reset by the node before our hold ran out.
    var closedByPeer = 0
    var bytesSent = 0
    var seconds = 0.0

    mutating func add(_ other: FloodResult) {
        started += other.started
        connected += other.connected
        failed += other.failed
        for index in byKind.indices { byKind[index] += other.byKind[index] }
        closedByPeer += other.closedByPeer
        bytesSent += other.bytesSent
        seconds = max(seconds, other.seconds)
    }
}
