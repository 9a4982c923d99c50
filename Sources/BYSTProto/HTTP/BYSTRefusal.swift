/// The `BYST-Refusal` header (PROTOCOL.md §6): a hub's HTTP listener puts it on every error
/// answer of its own, so a branch can tell the hub's refusal from a proxy's answer with the
/// same status (a 403 for an unknown key from a proxy's 403 for a forbidden destination).
///
/// It is a diagnostic only: anything on the path can add or strip it, so it never decides
/// anything about security (PROTOCOL.md §6, "BYST-Refusal").
public enum BYSTRefusal: String, Sendable, CaseIterable {
    /// The link closed before its first response byte because no configured key has the
    /// dialer's key id.
    case unknownKey = "unknown-key"
    /// The link closed before its first response byte for another reason (handshake message
    /// not valid, clock skew, replay, handshake timeout).
    case handshakeFailed = "handshake-failed"
    /// 400, 411, 426, 501, 505: the request is not one a link can start with.
    case badRequest = "bad-request"
    /// 404: another path, or a split-mode token the hub does not know.
    case notFound = "not-found"
    /// 405: a method other than GET and POST.
    case methodNotAllowed = "method-not-allowed"
    /// 408: the request head did not complete in time.
    case timeout = "timeout"
    /// 409: a split-mode part out of order, a repeat that differs, a second downstream.
    case conflict = "conflict"
    /// 413, 431: a head or pending body over the hub's bounds.
    case tooLarge = "too-large"
    /// 429: a split-mode pairing bound for one connection or source.
    case rateLimited = "rate-limited"
    /// 503: a pairing bound for all sources together.
    case overloaded = "overloaded"
    /// 500: the hub failed itself.
    case internalError = "internal"

    public static let headerName = "BYST-Refusal"

    /// The code a refusal with `status` carries (the 403 of a refused link is set by the
    /// caller, which knows why the link closed).
    public init(status: Int) {
        switch status {
        case 404: self = .notFound
        case 405: self = .methodNotAllowed
        case 408: self = .timeout
        case 409: self = .conflict
        case 413, 431: self = .tooLarge
        case 429: self = .rateLimited
        case 503: self = .overloaded
        case 500: self = .internalError
        case 403: self = .handshakeFailed
        default: self = .badRequest
        }
    }
}
