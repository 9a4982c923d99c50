import NIOCore

/// Reads one whole response, head and body, whose body nobody wants: a proxy's 407 before
/// the request is sent again on the same connection. What follows it stays in the buffer.
public struct HTTPResponseSkipper {
    private let requestMethod: String
    private var parser: HTTPHeadParser
    /// The head, as soon as it is read (before its body has ended).
    public private(set) var head: HTTPResponseHead?
    private var decoder: HTTPBodyDecoder?

    public init(requestMethod: String, limits: HTTPLimits = HTTPLimits()) {
        self.requestMethod = requestMethod
        parser = HTTPHeadParser(limits: limits)
    }

    /// The head once the body has ended too; nil while more bytes are needed.
    public mutating func feed(_ input: inout ByteBuffer) throws(HTTPError) -> HTTPResponseHead? {
        if head == nil {
            guard let parsed = try parser.parseResponse(&input) else { return nil }
            head = parsed
            decoder = HTTPBodyDecoder(framing: try HTTPBodyFraming.response(parsed, requestMethod: requestMethod))
        }
        guard var body = decoder, let head else { return nil }
        defer { decoder = body }
        while let part = try body.next(&input) {
            if case .end = part { return head }
        }
        return nil
    }

    /// Whether the connection may carry another request after `head` (HTTP/1.1 and no
    /// `close` in `Connection` or the older `Proxy-Connection`).
    public static func keepsAlive(_ head: HTTPResponseHead) -> Bool {
        head.version == .http11 && !head.headers.containsToken("close", in: "connection")
            && !head.headers.containsToken("close", in: "proxy-connection")
    }
}
