import CCrypto

/// Noise `CipherState` (§5.1): an optional key `k` and a 64-bit nonce `n`.
///
/// **Invariants**: `n` never reaches 2^64-1 through encryption or decryption; that value is
/// reserved for `Rekey()` (§4.2). Without a key, encryption and decryption are the identity.
public struct CipherState {
    public private(set) var key: AEADKey?
    public private(set) var nonce: UInt64 = 0
    public let algorithm: AEADAlgorithm

    public init(algorithm: AEADAlgorithm) { self.algorithm = algorithm }

    public var hasKey: Bool { key != nil }

    /// `InitializeKey(k)`: a new key, `n = 0`.
    public mutating func initializeKey(_ newKey: SecretBytes) throws(NoiseError) {
        do throws(CryptoError) { key = try AEADKey(algorithm: algorithm, key: newKey) } catch { throw .crypto(error) }
        nonce = 0
    }

    public mutating func encryptWithAd(_ ad: [UInt8], plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard let key else { return plaintext }
        guard nonce < .max else { throw .nonceExhausted }
        var out = plaintext + [UInt8](repeating: 0, count: AEADAlgorithm.tagSize)
        let n = nonce
        do throws(CryptoError) {
            try ad.withBytes { (adBytes) throws(CryptoError) in
                try out.withMutableBytes { (all) throws(CryptoError) in
                    let split = all.count - AEADAlgorithm.tagSize
                    try key.seal(
                        nonce: n, ad: adBytes, text: UnsafeMutableRawBufferPointer(rebasing: all[0..<split]),
                        tag: UnsafeMutableRawBufferPointer(rebasing: all[split...]))
                }
            }
        } catch { throw .crypto(error) }
        nonce += 1
        return out
    }

    public mutating func decryptWithAd(_ ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard let key else { return ciphertext }
        guard nonce < .max else { throw .nonceExhausted }
        guard ciphertext.count >= AEADAlgorithm.tagSize else { throw .truncated }
        var text = Array(ciphertext.dropLast(AEADAlgorithm.tagSize))
        let tag = Array(ciphertext.suffix(AEADAlgorithm.tagSize))
        let n = nonce
        do throws(CryptoError) {
            try ad.withBytes { (adBytes) throws(CryptoError) in
                try text.withMutableBytes { (textBytes) throws(CryptoError) in
                    try tag.withBytes { (tagBytes) throws(CryptoError) in
                        try key.open(nonce: n, ad: adBytes, text: textBytes, tag: tagBytes)
                    }
                }
            }
        } catch .authenticationFailed {
            throw .decryptionFailed
        } catch { throw .crypto(error) }
        nonce += 1
        return text
    }

    /// `Rekey()` (§4.2, §11.3): `k = ENCRYPT(k, 2^64-1, zerolen, zeros[32])[0..<32]`; `n` is kept.
    public mutating func rekey() throws(NoiseError) {
        guard let key else { return }
        do throws(CryptoError) {
            let next = try Self.rekeyed(key)
            self.key = try AEADKey(algorithm: algorithm, key: next)
        } catch { throw .crypto(error) }
    }

    /// The next key per Noise `REKEY`, shared with the record layer.
    static func rekeyed(_ key: AEADKey) throws(CryptoError) -> SecretBytes {
        try SecretBytes(count: AEADAlgorithm.keySize) { (zeros) throws(CryptoError) in
            var tag = (UInt64(0), UInt64(0))
            try withMutableBytes(of: &tag) { (tagBytes) throws(CryptoError) in
                try key.seal(nonce: .max, ad: UnsafeRawBufferPointer(start: nil, count: 0), text: zeros, tag: tagBytes)
            }
        }
    }
}
