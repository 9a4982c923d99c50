import NIOCore

/// A request line and its header fields (RFC 9112 §3).
///
/// **Invariants**: a head returned by `HTTPHeadParser` has a token method, a non-empty
/// target without SP or CTL, and valid fields. `write(into:)` writes whatever it holds,
/// unchecked: heads we send are built from our own constants and configuration.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target as sent: origin-form or absolute-form (see `HTTPRequestTarget`).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public init(method: String, target: String, version: HTTPVersion = .http11, headers: HTTPHeaders = .init()) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// Appends `METHOD SP target SP HTTP/1.x CRLF`, one `name: value CRLF` per field, CRLF.
    public func write(into out: inout ByteBuffer) {
        out.writeString(method)
        out.writeInteger(HTTPSyntax.sp)
        out.writeString(target)
        out.writeInteger(HTTPSyntax.sp)
        out.writeString(version.description)
        out.writeStaticString("\r\n")
        headers.write(into: &out)
    }
}

extension HTTPHeaders {
    /// Appends the fields and the blank line that ends a head.
    func write(into out: inout ByteBuffer) {
        for (name, value) in self {
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
    }
}
