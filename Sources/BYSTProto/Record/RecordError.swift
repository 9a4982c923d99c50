/// Errors of the record layer (PROTOCOL.md §4). Every case closes the link it happened on.
public enum RecordError: Error, Equatable, Sendable {
    /// The tag did not verify: tampered, reordered, replayed or truncated-and-spliced bytes,
    /// or a key mismatch. Records carry implicit counters, so a replayed or reordered record
    /// is exactly a record whose tag fails under the expected nonce.
    case authenticationFailed
    /// The announced payload length exceeds the limit this side advertised.
    case tooLarge(length: Int, limit: Int)
    /// A payload handed to the sealer exceeds the limit the peer advertised.
    case payloadTooLarge(length: Int, limit: Int)
    /// Unknown flag bits in a record header, or the compressed flag on a link that did not
    /// negotiate compression (PROTOCOL.md §4.2).
    case unknownFlags(UInt8)
    /// A compressed payload is not one valid zstd frame, or would decompress to more than
    /// our max record payload (a decompression bomb).
    case decompression(Zstd.Failure)
    /// The byte stream ended inside a record.
    case truncated
    /// The 64-bit nonce counter is exhausted; the link must be re-established.
    case counterExhausted
    /// libcrypto failed for a reason that is not the peer's doing.
    case crypto(CryptoError)
}
