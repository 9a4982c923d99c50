/// Errors of the Noise layer (spec rev 34). Input-caused cases close the link only.
public enum NoiseError: Error, Equatable, Sendable {
    /// The protocol name is not one this implementation runs.
    case unsupportedProtocol(String)
    /// A message was written or read out of turn, or after the handshake finished.
    case outOfTurn
    /// A message was shorter than its tokens and tag require.
    case truncated
    /// An AEAD tag failed: wrong PSK, tampered message or wrong prologue.
    case decryptionFailed
    /// A DH with the peer's key failed (invalid or low-order point).
    case invalidPublicKey
    /// A required key (static, remote static, PSK) was not supplied.
    case missingKey(String)
    /// The message would exceed Noise's 65535-byte limit (§3).
    case messageTooLong
    /// The CipherState nonce reached 2^64-1, which Noise reserves (§5.1).
    case nonceExhausted
    /// libcrypto failed for a reason that is not the peer's doing.
    case crypto(CryptoError)
}
