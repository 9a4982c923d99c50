import CCrypto

/// X25519 Diffie-Hellman (RFC 7748) over libcrypto, as Noise's `25519` DH functions (§12.1).
public enum X25519 {
    public static let keySize = 32

    /// A public key: 32 bytes, not secret.
    public struct PublicKey: Sendable, Equatable, Hashable {
        public let bytes: [UInt8]

        public init(bytes: [UInt8]) throws(CryptoError) {
            guard bytes.count == X25519.keySize else { throw .invalidKeyLength(bytes.count) }
            self.bytes = bytes
        }
    }

    /// A private key; its scalar is wiped when the last copy is dropped.
    ///
    /// **Invariants**: `publicKey` is the base-point multiple of `secret`; the scalar is
    /// clamped by libcrypto at use, never altered in storage (as the Noise vectors assume).
    public struct PrivateKey: Sendable {
        let secret: SecretBytes
        public let publicKey: PublicKey

        /// A fresh key pair from the CSPRNG.
        public static func generate() throws(CryptoError) -> PrivateKey {
            try PrivateKey(secret: .random(count: X25519.keySize))
        }

        /// A key from its 32 raw bytes (static keys loaded from storage, test vectors).
        public init(rawRepresentation bytes: [UInt8]) throws(CryptoError) {
            guard bytes.count == X25519.keySize else { throw .invalidKeyLength(bytes.count) }
            try self.init(secret: SecretBytes(bytes))
        }

        init(secret: SecretBytes) throws(CryptoError) {
            self.secret = secret
            let pkey = try Self.makePrivateKey(secret)
            defer { EVP_PKEY_free(pkey) }
            var out = [UInt8](repeating: 0, count: X25519.keySize)
            var length = out.count
            guard EVP_PKEY_get_raw_public_key(pkey, &out, &length) == 1, length == X25519.keySize else {
                throw .libcryptoFailure("EVP_PKEY_get_raw_public_key")
            }
            self.publicKey = try PublicKey(bytes: out)
        }

        /// DH(self, peer): the 32-byte shared secret. libcrypto refuses an all-zero result
        /// (a low-order peer point), which surfaces as `invalidPublicKey`.
        public func sharedSecret(with peer: PublicKey) throws(CryptoError) -> SecretBytes {
            let mine = try Self.makePrivateKey(secret)
            defer { EVP_PKEY_free(mine) }
            guard let theirs = peer.bytes.withUnsafeBufferPointer({
                EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, $0.baseAddress, $0.count)
            }) else { throw .invalidPublicKey }
            defer { EVP_PKEY_free(theirs) }
            guard let ctx = EVP_PKEY_CTX_new(mine, nil) else { throw .libcryptoFailure("EVP_PKEY_CTX_new") }
            defer { EVP_PKEY_CTX_free(ctx) }
            guard EVP_PKEY_derive_init(ctx) == 1 else { throw .libcryptoFailure("EVP_PKEY_derive_init") }
            guard EVP_PKEY_derive_set_peer(ctx, theirs) == 1 else { throw .invalidPublicKey }
            return try SecretBytes(count: X25519.keySize) { (out) throws(CryptoError) in
                var length = X25519.keySize
                guard EVP_PKEY_derive(ctx, out.baseAddress?.assumingMemoryBound(to: UInt8.self), &length) == 1,
                      length == X25519.keySize
                else {
                    ERR_clear_error()
                    throw .invalidPublicKey
                }
            }
        }

        private static func makePrivateKey(_ secret: SecretBytes) throws(CryptoError) -> OpaquePointer {
            guard let pkey = secret.withUnsafeBytes({
                EVP_PKEY_new_raw_private_key(
                    EVP_PKEY_X25519, nil, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count)
            }) else { throw .libcryptoFailure("EVP_PKEY_new_raw_private_key") }
            return pkey
        }
    }
}
