import CCrypto

/// The hashes other protocols on BYST's way are defined with, from libcrypto: MD5 and SHA-256
/// for proxy Digest authentication (RFC 7616), HMAC-MD5 for NTLMv2 (MS-NLMP), SHA-1 for the
/// `Sec-WebSocket-Accept` value (RFC 6455, `SHA1`). Nothing of BYST's own security rests on them.
public enum LegacyDigest: Sendable {
    case md5
    case sha256
    case sha1

    private var md: OpaquePointer? {
        switch self {
        case .md5: EVP_md5()
        case .sha256: EVP_sha256()
        case .sha1: EVP_sha1()
        }
    }

    public var outputSize: Int {
        switch self {
        case .md5: 16
        case .sha256: 32
        case .sha1: 20
        }
    }

    public func hash(_ bytes: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputSize)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                var empty: UInt8 = 0
                // libcrypto rejects a NULL pointer even for zero-length input.
                return withUnsafeMutablePointer(to: &empty) { emptyPointer in
                    EVP_Digest(input.baseAddress ?? UnsafePointer(emptyPointer), input.count, output.baseAddress, &length, md, nil) == 1
                }
            }
        }
        guard ok, Int(length) == outputSize else { throw .libcryptoFailure("EVP_Digest") }
        return out
    }

    /// Lower-case hex of the hash of `text`'s UTF-8, as Digest writes its values.
    public func hex(_ text: String) throws(CryptoError) -> String {
        try hash(Array(text.utf8)).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xf)]], as: UTF8.self)
        }.joined()
    }

    public func hmac(key: [UInt8], data: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputSize)
        var length: UInt32 = 0
        var empty: UInt8 = 0
        let result = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            key.withUnsafeBufferPointer { k in
                data.withUnsafeBufferPointer { d in
                    out.withUnsafeMutableBufferPointer { o in
                        HMAC(md, k.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(emptyPointer), Int32(k.count),
                             d.baseAddress ?? UnsafePointer(emptyPointer), d.count, o.baseAddress, &length)
                    }
                }
            }
        }
        guard result != nil, Int(length) == outputSize else { throw .libcryptoFailure("HMAC") }
        return out
    }
}
