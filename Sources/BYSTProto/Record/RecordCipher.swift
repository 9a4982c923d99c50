/// One direction's AEAD key, implicit 64-bit nonce counter and rekey schedule — shared by
/// `RecordSealer` and `RecordOpener` so both ends of a direction rekey at the same record.
///
/// **Invariants**
/// - Record `i` in a direction is sealed with nonce `i`; the counter never reaches 2^64-1
///   (reserved by Noise `REKEY`).
/// - After a record that brings the records or bytes since the last rekey to the limit,
///   the key is replaced by `REKEY(k)` (Noise §4.2). Sender and receiver see the same
///   sequence of records, so no signalling is needed.
struct RecordCipher {
    private(set) var key: AEADKey
    private(set) var nextNonce: UInt64 = 0
    private var recordsSinceRekey: UInt64 = 0
    private var bytesSinceRekey: UInt64 = 0
    let limits: RecordLimits
    private(set) var rekeyCount = 0

    init(algorithm: AEADAlgorithm, key: SecretBytes, limits: RecordLimits) throws(RecordError) {
        do throws(CryptoError) { self.key = try AEADKey(algorithm: algorithm, key: key) } catch { throw .crypto(error) }
        self.limits = limits
    }

    /// The nonce for the next record.
    @inline(__always)
    func currentNonce() throws(RecordError) -> UInt64 {
        guard nextNonce < UInt64.max - 1 else { throw .counterExhausted }
        return nextNonce
    }

    /// Advances past a record of `payloadLength` bytes and rekeys when a limit is reached.
    @inline(__always)
    mutating func advance(payloadLength: Int) throws(RecordError) {
        nextNonce += 1
        recordsSinceRekey += 1
        bytesSinceRekey += UInt64(payloadLength)
        if recordsSinceRekey >= limits.rekeyAfterRecords || bytesSinceRekey >= limits.rekeyAfterBytes {
            do throws(CryptoError) {
                key = try AEADKey(algorithm: key.algorithm, key: CipherState.rekeyed(key))
            } catch { throw .crypto(error) }
            recordsSinceRekey = 0
            bytesSinceRekey = 0
            rekeyCount += 1
        }
    }
}
