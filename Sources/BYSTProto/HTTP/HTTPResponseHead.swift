import NIOCore

/// A status line and its header fields (RFC 9112 §4).
///
/// **Invariants**: a head returned by `HTTPHeadParser` has a three-digit status in
/// 100...999 and a reason without CTLs other than HTAB (possibly empty). `write(into:)`
/// writes whatever it holds, unchecked.
public struct HTTPResponseHead: Sendable, Equatable {
    public var version: HTTPVersion
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders

    public init(status: Int, reason: String, version: HTTPVersion = .http11, headers: HTTPHeaders = .init()) {
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// Appends `HTTP/1.x SP status SP reason CRLF` (the SP stays even before an empty
    /// reason, as RFC 9112 §4 requires), the fields and the blank line.
    public func write(into out: inout ByteBuffer) {
        out.writeString(version.description)
        out.writeInteger(HTTPSyntax.sp)
        out.writeString(String(status))
        out.writeInteger(HTTPSyntax.sp)
        out.writeString(reason)
        out.writeStaticString("\r\n")
        headers.write(into: &out)
    }
}
