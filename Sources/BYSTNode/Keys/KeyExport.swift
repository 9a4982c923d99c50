import BYSTProto

/// The copy-pasteable form of a PSK (PROTOCOL.md §2.2):
/// `bystk1_` + base64url(key(32) ‖ SHA-256("BYST key export v1" ‖ key)[0..<4]), unpadded
/// (`ChecksummedString`). The checksum catches truncated or mistyped strings before they
/// become a wrong key.
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
        defer { SecretBytes.wipe(&bytes) }
        return ChecksummedString.encode(bytes, prefix: prefix, label: checksumLabel)
    }

    public static func decode(_ text: String) throws(Problem) -> PreSharedKey {
        var raw: [UInt8]
        do throws(ChecksummedString.Problem) { raw = try ChecksummedString.unwrap(text, prefix: prefix) } catch {
            throw error == .missingPrefix ? .missingPrefix : .notBase64
        }
        defer { SecretBytes.wipe(&raw) }
        // The length first: a truncated copy is named as such rather than as a bad checksum.
        guard raw.count == PreSharedKey.size + ChecksummedString.checksumSize else { throw .wrongLength(raw.count) }
        var secret: [UInt8]
        do throws(ChecksummedString.Problem) { secret = try ChecksummedString.verify(raw, label: checksumLabel) } catch {
            throw .checksumMismatch
        }
        defer { SecretBytes.wipe(&secret) }
        do { return try PreSharedKey(secret: SecretBytes(secret)) } catch { throw .weakKey }
    }

    static func checksum(_ secret: [UInt8]) -> [UInt8] { ChecksummedString.checksum(secret, label: checksumLabel) }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        // "\r\n" is one Character (a grapheme cluster), not "\r" then "\n".
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
