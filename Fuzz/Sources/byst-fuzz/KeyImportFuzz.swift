@testable import BYSTNode
import BYSTProto

/// `byst key import` strings (KeyExport, PROTOCOL.md §2.2) and the base64 under them.
/// Invariants: an accepted string names a key that exports and imports to itself;
/// base64 decoding inverts encoding in both alphabets.
enum KeyImportFuzz {
    static func run(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let key = try? KeyExport.decode(text) {
            let exported = KeyExport.encode(key)
            invariant((try? KeyExport.decode(exported))?.id == key.id, "export of an imported key does not import")
            invariant(exported.utf8.count == KeyExport.prefix.utf8.count + 48, "export of \(exported.utf8.count) characters")
        }
        if let bytes = Base64URL.decode(text) {
            for (urlSafe, padded) in [(true, false), (false, true)] {
                let encoded = Base64URL.encode(bytes, urlSafe: urlSafe, padded: padded)
                invariant(Base64URL.decode(encoded) == bytes, "base64 round trip changed \(bytes.count) bytes")
            }
        }
    }
}
