/// How the end of a message body is found (RFC 9112 §6.3).
///
/// **Invariants**: a message with both Transfer-Encoding and Content-Length, with a
/// coding other than a single `chunked`, or with an unparsable or inconsistent
/// Content-Length is refused, never guessed at: two parties that frame one message
/// differently are how requests get smuggled past proxies.
public enum HTTPBodyFraming: Sendable, Equatable {
    /// No body at all.
    case none
    /// Exactly this many bytes (0...2^53).
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// A response read until the server closes the connection (HTTP/1.0 style).
    case untilClose

    /// The largest Content-Length accepted: 2^53, the largest integer every JSON/JS peer
    /// represents exactly, and far beyond any BYST body.
    public static let maxContentLength = 1 << 53

    /// RFC 9112 §6.3 for requests: chunked, Content-Length, or no body (items 3–6; a
    /// request is never read until close).
    public static func request(_ head: HTTPRequestHead) throws(HTTPError) -> HTTPBodyFraming {
        try explicit(head.headers, version: head.version) ?? .none
    }

    /// RFC 9112 §6.3 for responses: no body for HEAD, 1xx, 204, 304 and a 2xx to
    /// CONNECT (items 1–2); then chunked or Content-Length; otherwise until close.
    public static func response(_ head: HTTPResponseHead, requestMethod: String) throws(HTTPError) -> HTTPBodyFraming {
        if requestMethod == "HEAD" || (100...199).contains(head.status) || head.status == 204 || head.status == 304 {
            return .none
        }
        if requestMethod == "CONNECT", (200...299).contains(head.status) { return .none }
        return try explicit(head.headers, version: head.version) ?? .untilClose
    }

    /// The framing the fields announce, nil when they announce none.
    private static func explicit(_ headers: HTTPHeaders, version: HTTPVersion) throws(HTTPError) -> HTTPBodyFraming? {
        let codings = headers.values("Transfer-Encoding")
        let lengths = headers.values("Content-Length")
        if !codings.isEmpty {
            // RFC 9112 §6.1: a sender MUST NOT send both; an intermediary may resolve it,
            // but refusing closes the smuggling gap for good.
            guard lengths.isEmpty else { throw .conflictingLength }
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
            guard version == .http11 else { throw .unsupportedTransferEncoding }
            // The list over all fields must be exactly one "chunked" (empty elements are
            // ignored per RFC 9110 §5.6.1); chunked twice, chunked not last, or any other
            // coding is refused: BYST bodies are opaque and never compressed.
            let elements = codings.flatMap(HTTPSyntax.listElements).filter { !$0.isEmpty }
            guard elements.count == 1, let only = elements.first, HTTPSyntax.equalsIgnoringCase(only, "chunked") else {
                throw .unsupportedTransferEncoding
            }
            return .chunked
        }
        guard !lengths.isEmpty else { return nil }
        // RFC 9112 §6.3 item 5: several fields or a list are fine only if all agree.
        var length: Int?
        for element in lengths.flatMap(HTTPSyntax.listElements) {
            guard let value = HTTPSyntax.decimal(element, maximum: maxContentLength), length ?? value == value else {
                throw .badContentLength
            }
            length = value
        }
        guard let length else { throw .badContentLength }
        return .contentLength(length)
    }
}
