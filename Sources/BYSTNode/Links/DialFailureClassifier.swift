import BYSTProto
import Glibc
import NIOCore
import NIOPosix
import NIOSSL

/// Turns the error that ended a dialed link before its handshake into a `DialFailureCause`
/// (BYSTProto), which `DialFailureLog` logs once per cause. The error types are NIO's, NIOSSL's
/// and our HTTP client's, so this lives here; the decisions about the log do not.
enum DialFailureClassifier {
    /// Where the link's TCP connection went, so a refused connect can say whether it was the
    /// proxy or the peer.
    struct Route {
        let address: HostPort
        let hop: DialFailureCause.Hop

        init(address: HostPort, viaProxy: Bool) {
            self.address = address
            hop = viaProxy ? .proxy : .endpoint
        }
    }

    static func cause(of error: any Error, route: Route) -> DialFailureCause {
        let address = route.address.description
        switch error {
        case let failure as SocketAddressError.UnknownHost:
            return .nameNotResolved(host: failure.host, hop: route.hop)
        case SocketAddressError.unknown(let host, _):
            return .nameNotResolved(host: host, hop: route.hop)
        case let failure as LinkConnector.Failure:
            return cause(errno: failure.code, route: route) ?? .other("\(failure)")
        case let failure as IOError:
            return cause(errno: failure.errnoCode, route: route) ?? .other("\(failure)")
        case ChannelError.connectTimeout:
            return .timedOut(address: address, hop: route.hop)
        case let failure as HTTPTransportError:
            return cause(of: failure)
        case is NIOSSLError, is NIOSSLExtraError:
            return .tlsFailed(reason: "\(error)")
        default:
            return .other("\(error)")
        }
    }

    private static func cause(errno code: Int32, route: Route) -> DialFailureCause? {
        switch code {
        case ECONNREFUSED: .refused(address: route.address.description, hop: route.hop)
        case ETIMEDOUT: .timedOut(address: route.address.description, hop: route.hop)
        default: nil
        }
    }

    /// An HTTP answer: a hub refusal carries `BYST-Refusal` (PROTOCOL.md §6), anything else
    /// came from a proxy or from something else at the endpoint.
    private static func cause(of error: HTTPTransportError) -> DialFailureCause {
        switch error {
        case .status(let code, let reason, let refusal):
            if let refusal {
                return refusal == BYSTRefusal.unknownKey.rawValue ? .hubRefusedKey : .hubRefused(code: refusal, status: code)
            }
            switch code {
            case 407: return .proxyAuthRequired(status: code)
            case 403: return .proxyForbidden(connect: false)
            default: return .httpStatus(code, reason: reason)
            }
        case .proxyRefused(407, _): return .proxyAuthRequired(status: 407)
        case .proxyAuth(let problem, let proxy): return .proxyAuthFailed(proxy: proxy, reason: problem.description)
        case .proxyRefused(403, _): return .proxyForbidden(connect: true)
        default: return .other("\(error)")
        }
    }
}
