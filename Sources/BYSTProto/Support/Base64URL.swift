/// RFC 4648 §5 base64url without padding (export strings), and standard base64 (key store).
/// The byte-level forms let key material be encoded and decoded without a `String` copy
/// (strings cannot be wiped); their scratch is wiped.
public enum Base64URL {
    private static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: [UInt8], urlSafe: Bool = true, padded: Bool = false) -> String {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { encode($0, urlSafe: urlSafe, padded: padded, into: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the encoding of `bytes` to `out`.
    public static func encode(_ bytes: UnsafeRawBufferPointer, urlSafe: Bool = true, padded: Bool = false, into out: inout [UInt8]) {
        let alphabet = urlSafe ? Self.urlSafe : Self.standard
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            if index + 1 < bytes.count { out.append(alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)]) } else if padded { out.append(UInt8(ascii: "=")) }
            if index + 2 < bytes.count { out.append(alphabet[Int(b2 & 0x3F)]) } else if padded { out.append(UInt8(ascii: "=")) }
            index += 3
        }
    }

    /// Decodes either alphabet, with or without padding; nil on any invalid character.
    public static func decode(_ text: String) -> [UInt8]? { decode(bytes: text.utf8) }

    /// `decode` of the text's bytes.
    public static func decode(bytes text: some Collection<UInt8>) -> [UInt8]? {
        if let decoded = text.withContiguousStorageIfAvailable({ decode(contiguous: $0) }) { return decoded }
        var copy = Array(text)
        defer { SecretBytes.wipe(&copy) }
        return copy.withUnsafeBufferPointer { decode(contiguous: $0) }
    }

    /// The decoder proper, concrete so that callers in other modules do not run it
    /// unspecialized: four characters make three bytes, `=` is skipped wherever it is.
    private static func decode(contiguous text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var group: UInt32 = 0
        var filled = 0
        for c in text {
            let value: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="): continue
            default:
                SecretBytes.wipe(&out)
                return nil
            }
            group = group << 6 | UInt32(value)
            filled += 1
            if filled == 4 {
                out.append(UInt8(truncatingIfNeeded: group >> 16))
                out.append(UInt8(truncatingIfNeeded: group >> 8))
                out.append(UInt8(truncatingIfNeeded: group))
                group = 0
                filled = 0
            }
        }
        switch filled {
        case 1:
            SecretBytes.wipe(&out)
            return nil
        case 2:
            out.append(UInt8(truncatingIfNeeded: group >> 4))
        case 3:
            out.append(UInt8(truncatingIfNeeded: group >> 10))
            out.append(UInt8(truncatingIfNeeded: group >> 2))
        default: break
        }
        return out
    }
}
