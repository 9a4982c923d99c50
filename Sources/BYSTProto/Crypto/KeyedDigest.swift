import CCrypto

/// Tells whether two byte strings are equal without keeping either: GMAC (AES-128-GCM over
/// additional data only) under a secret key and a fixed all-zero nonce. Equal inputs give
/// equal tags. For different inputs of up to n bytes the tags collide with probability at
/// most n/16 · 2⁻¹²⁸ for anyone who does not know the key (GHASH is almost-XOR-universal);
/// the tags must stay as secret as the key (they are compared, never shown). Several times
/// cheaper than SHA-256: GHASH runs on the CPU's carry-less multiply.
///
/// Digests made with the same key compare; one input at a time per instance (`begin`,
/// `update`s, `finish`). Not thread-safe: one owner at a time.
public final class KeyedDigest {
    public struct Tag: Equatable, Sendable {
        let high: UInt64
        let low: UInt64
    }

    public static let keySize = 16
    private let context: OpaquePointer

    public init(key: SecretBytes) throws(CryptoError) {
        guard key.count == Self.keySize else { throw .invalidKeyLength(key.count) }
        guard let context = EVP_CIPHER_CTX_new() else { throw .libcryptoFailure("EVP_CIPHER_CTX_new") }
        let ok = key.withUnsafeBytes {
            EVP_EncryptInit_ex(context, EVP_aes_128_gcm(), nil, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), nil)
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw .libcryptoFailure("EVP_EncryptInit_ex")
        }
        self.context = context
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Starts a new input (what was fed before is dropped).
    public func begin() throws(CryptoError) {
        var nonce: (UInt32, UInt32, UInt32) = (0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &nonce) {
            EVP_EncryptInit_ex(context, nil, nil, nil, $0.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        guard ok == 1 else { throw .libcryptoFailure("EVP_EncryptInit_ex") }
    }

    public func update(_ bytes: UnsafeRawBufferPointer) throws(CryptoError) {
        guard bytes.count > 0 else { return }
        var produced: Int32 = 0
        guard EVP_EncryptUpdate(context, nil, &produced, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                Int32(bytes.count)) == 1
        else { throw .libcryptoFailure("EVP_EncryptUpdate(ad)") }
    }

    /// The input's tag; `begin` again for the next input.
    public func finish() throws(CryptoError) -> Tag {
        var tail: Int32 = 0
        var finalBlock: (UInt64, UInt64) = (0, 0)
        var tag: (UInt64, UInt64) = (0, 0)
        let finalOK = withUnsafeMutableBytes(of: &finalBlock) {
            EVP_EncryptFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &tail) == 1
        }
        let ok = finalOK && withUnsafeMutableBytes(of: &tag) {
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, $0.baseAddress) == 1
        }
        guard ok else { throw .libcryptoFailure("EVP_EncryptFinal_ex") }
        return Tag(high: UInt64(bigEndian: tag.0), low: UInt64(bigEndian: tag.1))
    }
}
