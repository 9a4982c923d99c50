/// Parsers for the single lines of a head (RFC 9112 §3–§5). Each takes one line without
/// its line ending and either returns its parts or throws the precise error.
protocol HTTPStartLine: Sendable {
    /// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request
    /// line; nothing similar is allowed before a status line.
    static var skipsLeadingEmptyLines: Bool { get }
    init(parsing line: UnsafeRawBufferPointer) throws(HTTPError)
}

/// `request-line = method SP request-target SP HTTP-version` (RFC 9112 §3).
struct HTTPRequestLine: HTTPStartLine {
    var method: String
    var target: String
    var version: HTTPVersion

    static var skipsLeadingEmptyLines: Bool { true }

    init(parsing line: UnsafeRawBufferPointer) throws(HTTPError) {
        // The method is a token (no SP) and the version has no SP, so the first and the
        // last SP delimit the target; any SP between them lies inside the target.
        guard let first = line.firstIndex(of: HTTPSyntax.sp),
              let last = line.lastIndex(of: HTTPSyntax.sp), first < last
        else { throw .malformedHead("request line") }
        let method = line[..<first]
        let target = line[(first + 1)..<last]
        guard HTTPSyntax.isToken(method) else { throw .malformedHead("method") }
        version = try HTTPVersion(parsing: line[(last + 1)...])
        guard !target.isEmpty, target.allSatisfy({ $0 > HTTPSyntax.sp && $0 != 0x7F }) else {
            throw .badTarget
        }
        self.method = String(decoding: method, as: UTF8.self)
        self.target = String(decoding: target, as: UTF8.self)
    }
}

/// `status-line = HTTP-version SP status-code SP [ reason-phrase ]` (RFC 9112 §4); the SP
/// before an empty reason may be missing, as some servers omit it.
struct HTTPStatusLine: HTTPStartLine {
    var version: HTTPVersion
    var status: Int
    var reason: String

    static var skipsLeadingEmptyLines: Bool { false }

    init(parsing line: UnsafeRawBufferPointer) throws(HTTPError) {
        guard let space = line.firstIndex(of: HTTPSyntax.sp) else { throw .malformedHead("status line") }
        version = try HTTPVersion(parsing: line[..<space])
        // status-code = 3DIGIT. RFC 9110 §15 gives meaning to 100...599 and asks clients to
        // treat other three-digit codes as 5xx, so 100...999 parse and 0xx does not.
        let code = line[(space + 1)...]
        guard code.count >= 3, code.prefix(3).allSatisfy(HTTPSyntax.isDigit),
              code.first != UInt8(ascii: "0")
        else { throw .malformedHead("status code") }
        status = code.prefix(3).reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        let rest = code.dropFirst(3)
        guard let separator = rest.first else {
            reason = ""
            return
        }
        guard separator == HTTPSyntax.sp else { throw .malformedHead("status code") }
        let phrase = rest.dropFirst()
        guard phrase.allSatisfy(HTTPSyntax.isFieldValueByte) else { throw .malformedHead("reason phrase") }
        reason = String(decoding: phrase, as: UTF8.self)
    }
}

extension HTTPVersion {
    /// `HTTP-version = "HTTP/" DIGIT "." DIGIT`, case-sensitive (RFC 9112 §2.3).
    init(parsing bytes: Slice<UnsafeRawBufferPointer>) throws(HTTPError) {
        if bytes.elementsEqual("HTTP/1.1".utf8) {
            self = .http11
        } else if bytes.elementsEqual("HTTP/1.0".utf8) {
            self = .http10
        } else if bytes.count == 8, bytes.prefix(5).elementsEqual("HTTP/".utf8) {
            // Eight bytes, so the three after "HTTP/" exist.
            let digits = Array(bytes.dropFirst(5))
            guard HTTPSyntax.isDigit(digits[0]), digits[1] == UInt8(ascii: "."), HTTPSyntax.isDigit(digits[2]) else {
                throw .malformedHead("version")
            }
            throw .unsupportedVersion
        } else {
            throw .malformedHead("version")
        }
    }
}

/// `field-line = field-name ":" OWS field-value OWS` (RFC 9112 §5).
struct HTTPFieldLine {
    var name: String
    var value: String

    init(parsing line: UnsafeRawBufferPointer) throws(HTTPError) {
        // RFC 9112 §5.2: obs-fold is rejected (a server MUST reject it or unfold it).
        guard let first = line.first, !HTTPSyntax.isWhitespace(first) else { throw .malformedHead("obs-fold") }
        guard let colon = line.firstIndex(of: HTTPSyntax.colon) else { throw .malformedHead("field without colon") }
        let name = line[..<colon]
        // RFC 9112 §5.1: no whitespace between name and colon; a server MUST reject it.
        if let last = name.last, HTTPSyntax.isWhitespace(last) {
            throw .malformedHead("whitespace before colon")
        }
        guard HTTPSyntax.isToken(name) else { throw .malformedHead("field name") }
        var value = line[(colon + 1)...]
        guard value.allSatisfy(HTTPSyntax.isFieldValueByte) else { throw .malformedHead("control byte in field value") }
        while let byte = value.first, HTTPSyntax.isWhitespace(byte) { value = value.dropFirst() }
        while let byte = value.last, HTTPSyntax.isWhitespace(byte) { value = value.dropLast() }
        self.name = String(decoding: name, as: UTF8.self)
        self.value = String(decoding: value, as: UTF8.self)
    }
}
