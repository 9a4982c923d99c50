/// The two HTTP versions spoken on the wire (RFC 9112 §2.3).
public enum HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    case http10
    case http11

    /// The protocol string as it appears on the wire.
    public var description: String {
        switch self {
        case .http10: "HTTP/1.0"
        case .http11: "HTTP/1.1"
        }
    }
}
