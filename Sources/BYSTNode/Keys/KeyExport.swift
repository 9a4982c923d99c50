import BYSTProto

/// The copy-pasteable form of a PSK (PROTOCOL.md §2.2):
/// `bystk1_` + base64url(key(32) ‖ SHA-256("BYST key export v1" ‖ key)[0..<4]), unpadded.
/// The checksum catches truncated or mistyped strings before they become a wrong key.
public enum KeyExport {
    public static let prefix = "bystk1_"
    static let checksumLabel = Array("BYST key export v1".utf8)

    public enum Problem: Error, CustomStringConvertible, Equatable {
        case missingPrefix
        case notBase64
        case wrongLength(Int)
        case checksumMismatch
        case weakKey
        public var description: String {
            switch self {
            case .missingPrefix: "not a BYST key: it must start with \(KeyExport.prefix)"
            case .notBase64: "not a BYST key: bad characters after \(KeyExport.prefix)"
            case .wrongLength(let n): "not a BYST key: \(n) bytes after decoding, expected 36 (truncated copy?)"
            case .checksumMismatch: "BYST key checksum does not match (mistyped or truncated copy?)"
            case .weakKey: "refusing a weak key (all zeros or patterned); generate one with `byst key gen`"
            }
        }
    }

    /// The export string. (The returned `String` itself cannot be wiped; the byte copies
    /// made on the way are.)
    public static func encode(_ key: PreSharedKey) -> String {
        var bytes = key.secret.revealedBytes
        bytes += checksum(bytes)
        var text = Array(prefix.utf8)
        defer {
            SecretBytes.wipe(&bytes)
            SecretBytes.wipe(&text)
        }
        bytes.withUnsafeBytes { Base64URL.encode($0, into: &text) }
        return String(decoding: text, as: UTF8.self)
    }

    public static func decode(_ text: String) throws(Problem) -> PreSharedKey {
        let trimmed = text.trimmingASCIIWhitespace()
        guard trimmed.hasPrefix(prefix) else { throw .missingPrefix }
        guard var raw = Base64URL.decode(bytes: trimmed.utf8.dropFirst(prefix.utf8.count)) else { throw .notBase64 }
        defer { SecretBytes.wipe(&raw) }
        guard raw.count == PreSharedKey.size + 4 else { throw .wrongLength(raw.count) }
        var secret = Array(raw.prefix(PreSharedKey.size))
        defer { SecretBytes.wipe(&secret) }
        guard checksum(secret) == Array(raw.suffix(4)) else { throw .checksumMismatch }
        do { return try PreSharedKey(secret: SecretBytes(secret)) } catch { throw .weakKey }
    }

    static func checksum(_ secret: [UInt8]) -> [UInt8] {
        var input = checksumLabel + secret
        defer { SecretBytes.wipe(&input) }
        // SHA-256 of a fixed-size input cannot fail short of a broken libcrypto.
        let digest = (try? HashFunction.sha256.hash(input)) ?? []
        return Array(digest.prefix(4))
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
