import BYSTProto

/// The copy-pasteable form of secrets: `PREFIX` + base64url_nopad(payload ‖ checksum), where
/// checksum = SHA-256(label ‖ payload)[0..<4]. `bystk1_` keys (`KeyExport`) and `bystinv1_`
/// invitations (`Invitation`) use it, each with its own prefix and label (PROTOCOL.md §2.2,
/// §2.4). The checksum catches truncated or mistyped copies before they become a wrong key.
/// Intermediate byte copies are wiped; the caller wipes what it is handed.
enum ChecksummedString {
    static let checksumSize = 4

    enum Problem: Error, Equatable {
        case missingPrefix
        case notBase64
        /// Only base64url characters, but a number of them no encoding produces: cut short.
        case truncated
        /// Fewer bytes than the checksum alone.
        case tooShort(Int)
        case checksumMismatch
    }

    static func encode(_ payload: [UInt8], prefix: String, label: [UInt8]) -> String {
        var bytes = payload + checksum(payload, label: label)
        var text = Array(prefix.utf8)
        defer {
            SecretBytes.wipe(&bytes)
            SecretBytes.wipe(&text)
        }
        bytes.withUnsafeBytes { Base64URL.encode($0, into: &text) }
        return String(decoding: text, as: UTF8.self)
    }

    /// The decoded bytes after `prefix`, payload and checksum still together (ASCII
    /// whitespace around the text is ignored).
    static func unwrap(_ text: String, prefix: String) throws(Problem) -> [UInt8] {
        let trimmed = text.trimmingASCIIWhitespace()
        guard trimmed.hasPrefix(prefix) else { throw .missingPrefix }
        let encoded = trimmed.utf8.dropFirst(prefix.utf8.count)
        guard let raw = Base64URL.decode(bytes: encoded) else {
            throw encoded.allSatisfy(Self.isBase64URL) ? .truncated : .notBase64
        }
        return raw
    }

    /// The payload of unwrapped bytes whose checksum matches.
    static func verify(_ raw: [UInt8], label: [UInt8]) throws(Problem) -> [UInt8] {
        guard raw.count >= checksumSize else { throw .tooShort(raw.count) }
        var payload = Array(raw.dropLast(checksumSize))
        guard checksum(payload, label: label) == Array(raw.suffix(checksumSize)) else {
            SecretBytes.wipe(&payload)
            throw .checksumMismatch
        }
        return payload
    }

    /// `unwrap` then `verify`.
    static func decode(_ text: String, prefix: String, label: [UInt8]) throws(Problem) -> [UInt8] {
        var raw = try unwrap(text, prefix: prefix)
        defer { SecretBytes.wipe(&raw) }
        return try verify(raw, label: label)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    static func checksum(_ payload: [UInt8], label: [UInt8]) -> [UInt8] {
        var input = label + payload
        defer { SecretBytes.wipe(&input) }
        // SHA-256 of an in-memory input cannot fail short of a broken libcrypto.
        let digest = (try? HashFunction.sha256.hash(input)) ?? []
        return Array(digest.prefix(checksumSize))
    }
}
