/// Failures of the libcrypto wrappers. Peer-caused cases (`authenticationFailed`,
/// `invalidPublicKey`) are expected on hostile input; the others indicate a broken
/// libcrypto or a caller bug.
public enum CryptoError: Error, Equatable, Sendable {
    /// AEAD tag did not verify: wrong key, tampered bytes, wrong nonce or associated data.
    case authenticationFailed
    /// X25519 public key rejected or the shared secret was all zeros (low-order point).
    case invalidPublicKey
    /// A key or nonce of the wrong length was supplied.
    case invalidKeyLength(Int)
    /// libcrypto refused an operation that should not fail (named for the log line).
    case libcryptoFailure(String)
    /// The CSPRNG could not produce bytes.
    case randomFailed
}
