import CCrypto

/// The AEAD ciphers BYST negotiates (Noise §12.3 `ChaChaPoly`, §12.4 `AESGCM`).
/// The raw value is the suite byte on the wire (PROTOCOL.md §2).
public enum AEADAlgorithm: UInt8, Sendable, CaseIterable {
    case aes256gcm = 1
    case chacha20poly1305 = 2

    public static let keySize = 32
    public static let tagSize = 16
    static let nonceSize = 12

    /// The cipher's name inside a Noise protocol name.
    public var noiseName: String {
        switch self {
        case .aes256gcm: "AESGCM"
        case .chacha20poly1305: "ChaChaPoly"
        }
    }

    fileprivate var cipher: OpaquePointer? {
        switch self {
        case .aes256gcm: EVP_aes_256_gcm()
        case .chacha20poly1305: EVP_chacha20_poly1305()
        }
    }

    /// The 96-bit nonce for counter `n`: 32 zero bits, then `n` big-endian for AES-GCM and
    /// little-endian for ChaCha20-Poly1305 (Noise §12.3, §12.4).
    @inline(__always)
    fileprivate func writeNonce(_ n: UInt64, to nonce: UnsafeMutableRawBufferPointer) {
        nonce.storeBytes(of: 0, toByteOffset: 0, as: UInt32.self)
        switch self {
        case .aes256gcm: nonce.storeBytes(of: n.bigEndian, toByteOffset: 4, as: UInt64.self)
        case .chacha20poly1305: nonce.storeBytes(of: n.littleEndian, toByteOffset: 4, as: UInt64.self)
        }
    }
}

/// An AEAD key held inside one libcrypto context, so that each record only re-initialises
/// the nonce (docs/ARCHITECTURE.md §8). Seals and opens in place; the 16-byte tag goes to a
/// separate buffer, which callers place right after the ciphertext.
///
/// **Invariants**: the context always holds this key; it is wiped by `EVP_CIPHER_CTX_free`.
/// Not thread-safe: one owner (a link's sealer or opener) uses it at a time.
public final class AEADKey {
    public let algorithm: AEADAlgorithm
    private let context: OpaquePointer

    public init(algorithm: AEADAlgorithm, key: SecretBytes) throws(CryptoError) {
        guard key.count == AEADAlgorithm.keySize else { throw .invalidKeyLength(key.count) }
        guard let context = EVP_CIPHER_CTX_new() else { throw .libcryptoFailure("EVP_CIPHER_CTX_new") }
        let ok = key.withUnsafeBytes {
            EVP_CipherInit_ex(context, algorithm.cipher, nil, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, 1)
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw .libcryptoFailure("EVP_CipherInit_ex")
        }
        self.algorithm = algorithm
        self.context = context
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Encrypts `text` in place under nonce `n` and associated data `ad`; writes the tag to `tag`.
    public func seal(
        nonce n: UInt64, ad: UnsafeRawBufferPointer, text: UnsafeMutableRawBufferPointer,
        tag: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        try start(nonce: n, encrypt: true, ad: ad, text: text)
        var tail: Int32 = 0
        var finalBlock: (UInt64, UInt64) = (0, 0)
        let finalOK = withUnsafeMutableBytes(of: &finalBlock) {
            EVP_CipherFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &tail)
        }
        guard finalOK == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(AEADAlgorithm.tagSize), tag.baseAddress) == 1
        else { throw .libcryptoFailure("seal") }
    }

    /// Decrypts `text` in place and verifies `tag` (constant time, inside libcrypto).
    /// On failure the decrypted bytes are wiped before the error is thrown.
    public func open(
        nonce n: UInt64, ad: UnsafeRawBufferPointer, text: UnsafeMutableRawBufferPointer,
        tag: UnsafeRawBufferPointer
    ) throws(CryptoError) {
        try start(nonce: n, encrypt: false, ad: ad, text: text)
        guard EVP_CIPHER_CTX_ctrl(
            context, EVP_CTRL_AEAD_SET_TAG, Int32(AEADAlgorithm.tagSize), UnsafeMutableRawPointer(mutating: tag.baseAddress)
        ) == 1 else { throw .libcryptoFailure("set tag") }
        var tail: Int32 = 0
        var finalBlock: (UInt64, UInt64) = (0, 0)
        let finalOK = withUnsafeMutableBytes(of: &finalBlock) {
            EVP_CipherFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &tail)
        }
        guard finalOK == 1 else {
            ERR_clear_error()
            if text.count > 0 { OPENSSL_cleanse(text.baseAddress, text.count) }
            throw .authenticationFailed
        }
    }

    @inline(__always)
    private func start(
        nonce n: UInt64, encrypt: Bool, ad: UnsafeRawBufferPointer, text: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        var nonceBytes: (UInt32, UInt32, UInt32) = (0, 0, 0)
        let initOK = withUnsafeMutableBytes(of: &nonceBytes) { nonce in
            algorithm.writeNonce(n, to: nonce)
            return EVP_CipherInit_ex(
                context, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self), encrypt ? 1 : 0)
        }
        guard initOK == 1 else { throw .libcryptoFailure("EVP_CipherInit_ex") }
        var produced: Int32 = 0
        if ad.count > 0 {
            guard EVP_CipherUpdate(
                context, nil, &produced, ad.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(ad.count)
            ) == 1 else { throw .libcryptoFailure("EVP_CipherUpdate(ad)") }
        }
        if text.count > 0 {
            let pointer = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
            guard EVP_CipherUpdate(context, pointer, &produced, pointer, Int32(text.count)) == 1,
                  Int(produced) == text.count
            else { throw .libcryptoFailure("EVP_CipherUpdate") }
        }
    }
}
