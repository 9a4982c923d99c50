import CCrypto

/// SHA-1, for one use only: the `Sec-WebSocket-Accept` value of RFC 6455 §4.2.2, which the
/// RFC fixes to SHA-1. It proves nothing about anyone (BYST's own handshake does that); it
/// only shows a proxy and the client that the server understood the upgrade.
public enum SHA1 {
    public static let outputSize = 20

    public static func digest(_ bytes: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputSize)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                var empty: UInt8 = 0
                // libcrypto rejects a NULL pointer even for zero-length input.
                return withUnsafeMutablePointer(to: &empty) { emptyPointer in
                    EVP_Digest(input.baseAddress ?? UnsafePointer(emptyPointer), input.count, output.baseAddress, &length,
                               EVP_sha1(), nil) == 1
                }
            }
        }
        guard ok, Int(length) == outputSize else { throw .libcryptoFailure("EVP_Digest(SHA-1)") }
        return out
    }
}
