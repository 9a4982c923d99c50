import CCrypto

/// Noise `SymmetricState` (§5.2): chaining key `ck`, handshake hash `h` and a `CipherState`.
///
/// **Invariants**: `ck` and `h` are `HASHLEN` (32) bytes; `ck` is secret and wiped on drop.
public struct SymmetricState {
    public let hash: HashFunction
    private(set) var chainingKey: SecretBytes
    public private(set) var handshakeHash: [UInt8]
    private(set) var cipher: CipherState

    /// `InitializeSymmetric(protocol_name)`.
    public init(protocolName: String, hash: HashFunction, cipher: AEADAlgorithm) throws(NoiseError) {
        self.hash = hash
        let name = Array(protocolName.utf8)
        let h: [UInt8]
        if name.count <= hash.outputSize {
            h = name + [UInt8](repeating: 0, count: hash.outputSize - name.count)
        } else {
            do throws(CryptoError) { h = try hash.hash(name) } catch { throw .crypto(error) }
        }
        handshakeHash = h
        chainingKey = SecretBytes(h)
        self.cipher = CipherState(algorithm: cipher)
    }

    /// `MixKey(input_key_material)`.
    public mutating func mixKey(_ inputKeyMaterial: SecretBytes) throws(NoiseError) {
        let (ck, k) = try hkdf2(inputKeyMaterial)
        chainingKey = ck
        try cipher.initializeKey(k)
    }

    /// `MixHash(data)`: `h = HASH(h || data)`.
    public mutating func mixHash(_ data: [UInt8]) throws(NoiseError) {
        do throws(CryptoError) {
            handshakeHash = try handshakeHash.withBytes { (h) throws(CryptoError) in
                try data.withBytes { (d) throws(CryptoError) in try hash.hash(h, d) }
            }
        } catch { throw .crypto(error) }
    }

    /// `MixKeyAndHash(input_key_material)` (§5.2, used by `psk` tokens).
    public mutating func mixKeyAndHash(_ inputKeyMaterial: SecretBytes) throws(NoiseError) {
        let out = try hkdf(inputKeyMaterial, outputs: 3)
        let slices = out.withUnsafeBytes { bytes in
            (SecretBytes(bytes[0..<32]), Array(bytes[32..<64]), SecretBytes(bytes[64..<96]))
        }
        chainingKey = slices.0
        try mixHash(slices.1)
        try cipher.initializeKey(slices.2)
    }

    public mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let ciphertext = try cipher.encryptWithAd(handshakeHash, plaintext: plaintext)
        try mixHash(ciphertext)
        return ciphertext
    }

    public mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plaintext = try cipher.decryptWithAd(handshakeHash, ciphertext: ciphertext)
        try mixHash(ciphertext)
        return plaintext
    }

    /// `Split()`: the two transport keys (initiator→responder, responder→initiator) as raw
    /// secrets, so the record layer can build its own contexts from them.
    public func splitKeys() throws(NoiseError) -> (SecretBytes, SecretBytes) {
        try hkdf2(SecretBytes([]))
    }

    /// `Split()` as two `CipherState`s.
    public func split() throws(NoiseError) -> (CipherState, CipherState) {
        let (k1, k2) = try splitKeys()
        var c1 = CipherState(algorithm: cipher.algorithm)
        var c2 = CipherState(algorithm: cipher.algorithm)
        try c1.initializeKey(k1)
        try c2.initializeKey(k2)
        return (c1, c2)
    }

    private func hkdf(_ inputKeyMaterial: SecretBytes, outputs: Int) throws(NoiseError) -> SecretBytes {
        do throws(CryptoError) {
            return try chainingKey.withUnsafeBytes { (ck) throws(CryptoError) in
                try inputKeyMaterial.withUnsafeBytes { (ikm) throws(CryptoError) in
                    try hash.hkdf(salt: ck, inputKeyMaterial: ikm, length: outputs * hash.outputSize)
                }
            }
        } catch { throw .crypto(error) }
    }

    private func hkdf2(_ inputKeyMaterial: SecretBytes) throws(NoiseError) -> (SecretBytes, SecretBytes) {
        let out = try hkdf(inputKeyMaterial, outputs: 2)
        return out.withUnsafeBytes { (SecretBytes($0[0..<32]), SecretBytes($0[32..<64])) }
    }
}
