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
        var values: [UInt8] = []
        values.reserveCapacity(text.count)
        defer { SecretBytes.wipe(&values) }
        for c in text {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"), UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "/"), UInt8(ascii: "_"): values.append(63)
            case UInt8(ascii: "="): continue
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index < values.count {
            func value(_ offset: Int) -> UInt8 { index + offset < values.count ? values[index + offset] : 0 }
            out.append(value(0) << 2 | value(1) >> 4)
            if index + 2 < values.count { out.append(value(1) << 4 | value(2) >> 2) }
            if index + 3 < values.count { out.append(value(2) << 6 | value(3)) }
            index += 4
        }
        return out
    }
}
