/// A 256-bit pre-shared key and its public key id (PROTOCOL.md §2.1).
///
/// **Invariants**: the secret is 32 bytes, not weak (see `init(secret:)`), wiped on drop;
/// `id` is derived from the secret, never from a name.
public struct PreSharedKey: Sendable {
    public static let size = 32
    public let secret: SecretBytes
    public let id: KeyID

    public enum Problem: Error, Equatable, Sendable {
        case wrongLength(Int)
        /// All zeros, a repeated pattern or too few distinct bytes to have come from a CSPRNG.
        case weak
    }

    public init(secret: SecretBytes) throws(Problem) {
        guard secret.count == Self.size else { throw .wrongLength(secret.count) }
        // 32 CSPRNG bytes have ~30 distinct values; fewer than 16 happens with probability
        // below 2^-60, while typed or patterned "keys" fall far short of it.
        let distinct = secret.withUnsafeBytes { Self.distinctValues($0) }
        guard distinct >= 16 else { throw .weak }
        self.secret = secret
        self.id = KeyID(deriving: secret)
    }

    /// How many different byte values `bytes` holds (a 256-bit map: no hashing, no heap).
    static func distinctValues(_ bytes: UnsafeRawBufferPointer) -> Int {
        var seen = SIMD4<UInt64>()
        for byte in bytes { seen[Int(byte >> 6)] |= 1 << UInt64(byte & 63) }
        return (0..<4).reduce(0) { $0 + seen[$1].nonzeroBitCount }
    }

    /// A fresh key from the OS CSPRNG.
    public static func generate() throws(CryptoError) -> PreSharedKey {
        while true {
            let candidate = try SecretBytes.random(count: size)
            if let key = try? PreSharedKey(secret: candidate) { return key }
        }
    }
}

/// The 8-byte key id that names a PSK on the wire:
/// `HMAC-SHA256(key = PSK, "BYST key id v1")[0..<8]`.
public struct KeyID: Hashable, Sendable, CustomStringConvertible {
    public static let size = 8
    public static let label = Array("BYST key id v1".utf8)
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.size else { return nil }
        self.bytes = bytes
    }

    init(deriving secret: SecretBytes) {
        var mac = [UInt8](repeating: 0, count: 32)
        secret.withUnsafeBytes { key in
            Self.label.withUnsafeBytes { label in
                mac.withUnsafeMutableBytes { out in
                    // HMAC-SHA256 over fixed, valid inputs cannot fail short of a broken libcrypto.
                    do { try HashFunction.sha256.hmac(key: key, data: label, into: out) } catch {
                        preconditionFailure("HMAC-SHA256 failed: \(error)")
                    }
                }
            }
        }
        bytes = Array(mac.prefix(Self.size))
    }

    /// Lowercase hex, as `byst key show` prints it.
    public var description: String { bytes.hexString }
}

extension Sequence<UInt8> {
    /// Lowercase hex, two digits per byte (key ids, session ids in logs and status).
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
