import NIOCore

extension LinkMachine {
    /// The other end of an established link, as its hello and the handshake say.
    public struct Peer: Sendable, Equatable {
        public let hello: LinkHello
        /// The PSK the link was authenticated with.
        public let keyID: KeyID
        public let suite: AEADAlgorithm
        /// Features both hellos offered.
        public let features: LinkFeatures
    }

    /// What `next` found in the bytes received.
    public enum Event: Sendable {
        /// The handshake completed: attach the link to its session (for the initiator, its
        /// first record is in `output`).
        case established(Peer)
        /// One record's payload, decompressed if it was flagged; otherwise a slice of the
        /// inbound buffer (held past the next call, it makes the next open copy the buffer).
        case record(ByteBuffer)
    }

    /// Why a link closes. Nothing is sent back on any of them (PROTOCOL.md §3.4).
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// The handshake failed: a wrong or unknown key, a replay, reflection, bytes that are
        /// not a BYST handshake, or the stream ended inside it (`truncated`).
        case handshake(HandshakeError)
        /// A record did not open, did not decompress or could not be sealed, or the stream
        /// ended inside one (`truncated`).
        case record(RecordError)
        /// Asked to seal or open before the handshake completed, or on a machine whose record
        /// layer was handed off.
        case notEstablished
        /// Asked to seal or open after the link closed.
        case closed

        public var description: String {
            switch self {
            case .handshake(let error): "handshake failed: \(error)"
            case .record(let error): "record layer: \(error)"
            case .notEstablished: "the link is not established"
            case .closed: "the link is closed"
            }
        }
    }
}
