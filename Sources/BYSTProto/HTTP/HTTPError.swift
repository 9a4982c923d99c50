/// Why an HTTP/1.1 message was rejected (RFC 9110, RFC 9112). Every case is caused by the
/// peer's bytes; the connection that produced it is closed after an optional error answer.
///
/// **Invariants**: parsers and decoders throw exactly one of these cases and never trap on
/// input; once one has thrown, it keeps throwing the same error.
public enum HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request/status line and headers (with leading empty lines and the blank line)
    /// reached `HTTPLimits.maxHeadBytes` without ending.
    case headTooLarge
    /// More header fields than `HTTPLimits.maxHeaders`.
    case tooManyHeaders
    /// The head does not follow RFC 9112 §3–§5; the string names what is wrong.
    case malformedHead(String)
    /// A well-formed `HTTP/x.y` other than HTTP/1.0 and HTTP/1.1.
    case unsupportedVersion
    /// An empty request target, one with SP or control bytes, or (for `HTTPRequestTarget`)
    /// one that is neither origin-form nor absolute-form.
    case badTarget
    /// Both Transfer-Encoding and Content-Length: a request-smuggling vector
    /// (RFC 9112 §6.1), refused rather than resolved.
    case conflictingLength
    /// Content-Length that is not 1+ decimal digits up to 2^53, or several that differ.
    case badContentLength
    /// A transfer coding other than exactly `chunked` (or any on an HTTP/1.0 message).
    case unsupportedTransferEncoding
    /// A chunk-size line that is not 1–15 hex digits, optionally followed by extensions.
    case badChunkSize
    /// A chunk-size line longer than `HTTPLimits.maxChunkLine` bytes.
    case chunkLineTooLong
    /// Chunk data not followed by CRLF (or LF).
    case badChunkTerminator
    /// The trailer section exceeds `HTTPLimits.maxTrailerBytes`.
    case trailersTooLarge
    /// The connection ended before a length-delimited or chunked body did.
    case truncatedBody

    /// The status a server answers with (RFC 9110 §15, RFC 6585 §5): 431 for oversized
    /// heads, 505 for versions, 501 for transfer codings, 400 for everything else.
    public var status: Int {
        switch self {
        case .headTooLarge, .tooManyHeaders: 431
        case .unsupportedVersion: 505
        case .unsupportedTransferEncoding: 501
        case .malformedHead, .badTarget, .conflictingLength, .badContentLength, .badChunkSize,
             .chunkLineTooLong, .badChunkTerminator, .trailersTooLarge, .truncatedBody: 400
        }
    }

    /// The reason phrase that goes with `status`.
    public var reasonPhrase: String {
        switch status {
        case 431: "Request Header Fields Too Large"
        case 505: "HTTP Version Not Supported"
        case 501: "Not Implemented"
        default: "Bad Request"
        }
    }

    public var description: String {
        switch self {
        case .headTooLarge: "HTTP head too large"
        case .tooManyHeaders: "too many HTTP header fields"
        case .malformedHead(let what): "malformed HTTP head: \(what)"
        case .unsupportedVersion: "unsupported HTTP version"
        case .badTarget: "bad HTTP request target"
        case .conflictingLength: "both Transfer-Encoding and Content-Length"
        case .badContentLength: "bad Content-Length"
        case .unsupportedTransferEncoding: "unsupported Transfer-Encoding"
        case .badChunkSize: "bad chunk size"
        case .chunkLineTooLong: "chunk size line too long"
        case .badChunkTerminator: "chunk data not followed by CRLF"
        case .trailersTooLarge: "chunked trailer section too large"
        case .truncatedBody: "connection closed inside an HTTP body"
        }
    }
}
