import CCrypto

/// Hash functions usable by Noise (§4.3) and by BYST's key derivations: SHA-256 and
/// BLAKE2s-256, both from libcrypto, with HMAC and HKDF (RFC 2104 / RFC 5869) on top.
///
/// **Invariants**: `outputSize` is 32 and `blockSize` 64 for both, as Noise requires for
/// `HASHLEN` / `BLOCKLEN`.
public enum HashFunction: String, Sendable, CaseIterable {
    case sha256 = "SHA256"
    case blake2s = "BLAKE2s"

    public var outputSize: Int { 32 }

    private var md: OpaquePointer? {
        switch self {
        case .sha256: EVP_sha256()
        case .blake2s: EVP_blake2s256()
        }
    }

    /// HASH(parts[0] || parts[1] || …).
    public func hash(_ parts: UnsafeRawBufferPointer...) throws(CryptoError) -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw .libcryptoFailure("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestInit_ex(ctx, md, nil) == 1 else { throw .libcryptoFailure("EVP_DigestInit_ex") }
        for part in parts where part.count > 0 {
            guard EVP_DigestUpdate(ctx, part.baseAddress, part.count) == 1 else {
                throw .libcryptoFailure("EVP_DigestUpdate")
            }
        }
        var out = [UInt8](repeating: 0, count: outputSize)
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(ctx, &out, &length) == 1, Int(length) == outputSize else {
            throw .libcryptoFailure("EVP_DigestFinal_ex")
        }
        return out
    }

    public func hash(_ bytes: [UInt8]) throws(CryptoError) -> [UInt8] {
        try bytes.withBytes { (b) throws(CryptoError) in try hash(b) }
    }

    /// HMAC(key, data) written to `out` (which must hold `outputSize` bytes).
    public func hmac(
        key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        precondition(out.count >= outputSize, "HMAC output buffer too small")
        var length: UInt32 = 0
        // libcrypto rejects a NULL pointer even for zero-length inputs.
        var empty: UInt8 = 0
        let result = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            HMAC(
                md, key.baseAddress ?? UnsafeRawPointer(emptyPointer), Int32(key.count),
                data.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptyPointer), data.count,
                out.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
        }
        guard result != nil, Int(length) == outputSize else { throw .libcryptoFailure("HMAC") }
    }

    public func hmac(key: [UInt8], data: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputSize)
        try key.withBytes { (k) throws(CryptoError) in
            try data.withBytes { (d) throws(CryptoError) in
                try out.withMutableBytes { (o) throws(CryptoError) in try hmac(key: k, data: d, into: o) }
            }
        }
        return out
    }

    /// HKDF (RFC 5869) extract-and-expand to `length` bytes, as wiped secret bytes.
    ///
    /// Noise's `HKDF(chaining_key, input_key_material, num_outputs)` (§4.3) is exactly this
    /// with `salt = chaining_key`, empty `info` and `length = num_outputs * HASHLEN`.
    public func hkdf(
        salt: UnsafeRawBufferPointer, inputKeyMaterial: UnsafeRawBufferPointer,
        info: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0), length: Int
    ) throws(CryptoError) -> SecretBytes {
        precondition(length > 0 && length <= 255 * outputSize, "HKDF length out of range")
        let hashLength = outputSize
        let prk = try SecretBytes(count: hashLength) { (prk) throws(CryptoError) in
            try hmac(key: salt, data: inputKeyMaterial, into: prk)
        }
        return try SecretBytes(count: length) { (okm) throws(CryptoError) in
            // T(i) = HMAC(PRK, T(i-1) || info || i); `scratch` holds T(i-1) || info || i.
            var scratch = [UInt8](repeating: 0, count: hashLength + info.count + 1)
            var t = [UInt8](repeating: 0, count: hashLength)
            defer {
                scratch.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
                t.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
            }
            var previousLength = 0
            var written = 0
            var counter: UInt8 = 1
            while written < length {
                scratch.replaceSubrange(previousLength..<(previousLength + info.count), with: info)
                scratch[previousLength + info.count] = counter
                let inputLength = previousLength + info.count + 1
                try scratch.withBytes { (input) throws(CryptoError) in
                    try t.withMutableBytes { (tBytes) throws(CryptoError) in
                        try prk.withUnsafeBytes { (prkBytes) throws(CryptoError) in
                            try hmac(key: prkBytes, data: UnsafeRawBufferPointer(rebasing: input[0..<inputLength]), into: tBytes)
                        }
                    }
                }
                let take = min(hashLength, length - written)
                for i in 0..<take { okm[written + i] = t[i] }
                scratch.replaceSubrange(0..<hashLength, with: t)
                previousLength = hashLength
                written += take
                counter &+= 1
            }
        }
    }
}
