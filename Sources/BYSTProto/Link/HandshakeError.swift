/// Why a link handshake failed (PROTOCOL.md §3). Each case closes that link only, with
/// one log line; nothing is sent back, so a prober learns nothing.
public enum HandshakeError: Error, Equatable, Sendable {
    /// The first bytes are not the BYST magic: not a BYST client at all.
    case badMagic
    case unsupportedVersion(UInt8)
    case unsupportedSuite(UInt8)
    /// No key with this id is configured here.
    case unknownKeyID(KeyID)
    /// A handshake message longer than the protocol allows.
    case messageTooLarge(Int)
    /// The AEAD tag failed: wrong PSK, tampered or corrupted message.
    case authenticationFailed
    /// The hello payload does not parse.
    case malformedHello(String)
    /// The initiator's timestamp is further than the window from our clock (ns of skew).
    case timestampOutsideWindow(skewNanoseconds: Int64)
    /// A message 1 already seen (same ephemeral key) or older than what the filter remembers.
    case replayed
    /// The responder's hello does not echo our session id and link index.
    case sessionMismatch
    /// The other side's hello carries our own node name: the link was reflected back to us
    /// (a node that dials and accepts with the same PSK would otherwise serve itself).
    case reflected
    /// The peer's ephemeral key was rejected by X25519 (low-order point).
    case invalidPublicKey
    /// The stream ended inside a handshake message.
    case truncated
    /// A message arrived when none was expected (e.g. bytes before our message 1).
    case unexpectedMessage
    /// libcrypto failed for a reason that is not the peer's doing.
    case crypto(CryptoError)

    init(_ noise: NoiseError) {
        switch noise {
        case .decryptionFailed: self = .authenticationFailed
        case .truncated: self = .malformedHello("handshake message shorter than its keys and tag")
        case .invalidPublicKey: self = .invalidPublicKey
        case .messageTooLong: self = .messageTooLarge(65536)
        case .crypto(let error): self = .crypto(error)
        case .unsupportedProtocol, .outOfTurn, .missingKey, .nonceExhausted: self = .unexpectedMessage
        }
    }
}

/// Runs a Noise step, turning its error into the handshake error a link reports.
@inline(__always)
func mapNoiseError<R>(_ body: () throws(NoiseError) -> R) throws(HandshakeError) -> R {
    do throws(NoiseError) { return try body() } catch { throw HandshakeError(error) }
}
