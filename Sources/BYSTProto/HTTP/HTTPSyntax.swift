/// Byte classes and small helpers from the RFC 9110 §5.6 grammar, shared by the head
/// parser, the framing rules and `HTTPHeaders` (and, within the package, the config's
/// URL and host parsing).
package enum HTTPSyntax {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let sp = UInt8(ascii: " ")
    static let htab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")

    /// `tchar` (RFC 9110 §5.6.2): ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "a")...UInt8(ascii: "z"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
             UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// `token = 1*tchar`.
    static func isToken(_ bytes: some Collection<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy(isTokenByte)
    }

    /// A byte allowed in a field value or reason phrase (RFC 9110 §5.5, RFC 9112 §4):
    /// HTAB, SP, VCHAR, obs-text — every byte except the CTLs other than HTAB.
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == htab || (byte >= 0x20 && byte != 0x7F)
    }

    /// `OWS` = SP / HTAB.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == sp || byte == htab
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// The value of a hex digit (either case), nil for anything else.
    package static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }

    package static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// `s` with ASCII letters lower-cased (tokens: schemes, parameter names).
    package static func lowercasedASCII(_ s: some StringProtocol) -> String {
        String(decoding: s.utf8.map(lowercased), as: UTF8.self)
    }

    /// ASCII case-insensitive equality; bytes above 0x7F must match exactly.
    static func equalsIgnoringCase(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        a.utf8.count == b.utf8.count
            && a.utf8.elementsEqual(b.utf8) { lowercased($0) == lowercased($1) }
    }

    /// `s` without leading and trailing OWS.
    static func trimmingWhitespace(_ s: Substring) -> Substring {
        let utf8 = s.utf8
        guard let first = utf8.firstIndex(where: { !isWhitespace($0) }),
              let last = utf8.lastIndex(where: { !isWhitespace($0) })
        else { return s[s.endIndex...] }
        return s[first...last]
    }

    /// The elements of a comma-separated list (RFC 9110 §5.6.1), trimmed, empty elements
    /// kept (callers decide whether they are an error).
    static func listElements(_ value: String) -> [Substring] {
        value.split(separator: ",", omittingEmptySubsequences: false).map(trimmingWhitespace)
    }

    /// `1*DIGIT` as an Int no larger than `maximum`; nil when empty, not all digits, or too
    /// large (checked digit by digit, so no input overflows).
    package static func decimal(_ s: Substring, maximum: Int) -> Int? {
        guard !s.utf8.isEmpty else { return nil }
        var value = 0
        for byte in s.utf8 {
            guard isDigit(byte) else { return nil }
            let digit = Int(byte - UInt8(ascii: "0"))
            guard value <= (maximum - digit) / 10 else { return nil }
            value = value * 10 + digit
        }
        return value
    }
}
