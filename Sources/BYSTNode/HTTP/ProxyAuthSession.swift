import BYSTProto
import Glibc

/// A peer's forward proxy and what it asked for (ProxyAuthenticator), shared by every
/// connection its links open to it, so that a Digest nonce learned on one serves the others.
/// Lives on the node's event loop, as the handlers that use it do.
final class ProxyAuthSession {
    let proxy: HostPort
    private var authenticator: ProxyAuthenticator

    init(proxy: HostPort, credentials: ProxyCredentials?) {
        self.proxy = proxy
        authenticator = ProxyAuthenticator(credentials: credentials, workstation: Self.workstation)
    }

    /// Whether we could answer a 407 (a user name and password are configured).
    var hasCredentials: Bool { authenticator.credentials != nil }

    /// NTLM wants a handshake on every new connection.
    var connectionNeedsHandshake: Bool { authenticator.connectionNeedsHandshake }

    /// A request whose body streams goes first without it unless the proxy takes Basic (or
    /// nothing): before it asked for anything, for NTLM's Type 1, and for Digest (a nonce the
    /// proxy dropped could not be answered once the body is flowing, so the leg goes without
    /// an answer and draws a fresh nonce).
    var wantsBodylessLeg: Bool {
        switch authenticator.learned {
        case .unknown: authenticator.credentials != nil
        case .digest, .ntlm: true
        case .basic, .notRequired: false
        }
    }

    /// The proxy passed a request without credentials: it needs none.
    func passedWithoutCredentials() { authenticator.proxyPassedWithoutCredentials() }

    /// Why a preemptive answer the proxy refused cannot be retried (its request's body is gone).
    func refusedPreemptive() -> ProxyAuthError {
        .rejected(scheme: authenticator.learnedSchemeName, user: authenticator.credentials?.user ?? "")
    }

    func opening(_ request: HTTPRequestHead, exchange: inout ProxyAuthenticator.Exchange) throws(HTTPTransportError) -> HTTPRequestHead {
        do throws(ProxyAuthError) {
            return Self.with(try authenticator.opening(method: request.method, uri: request.target, exchange: &exchange), request)
        } catch { throw .proxyAuth(error, proxy: proxy.description) }
    }

    /// `request` as a bodyless first leg (ProxyAuthenticator.openingLeg).
    func openingLeg(_ request: HTTPRequestHead, exchange: inout ProxyAuthenticator.Exchange) throws(HTTPTransportError) -> HTTPRequestHead {
        do throws(ProxyAuthError) {
            return Self.with(try authenticator.openingLeg(method: request.method, uri: request.target, exchange: &exchange), request)
        } catch { throw .proxyAuth(error, proxy: proxy.description) }
    }

    /// `request` again, answering the 407 `head`.
    func answer(_ head: HTTPResponseHead, to request: HTTPRequestHead, exchange: inout ProxyAuthenticator.Exchange)
        throws(HTTPTransportError) -> HTTPRequestHead
    {
        do throws(ProxyAuthError) {
            let value = try authenticator.challenged(head.headers, method: request.method, uri: request.target, exchange: &exchange,
                                                     unixNanoseconds: Clocks.wall())
            return Self.with(value, request)
        } catch { throw .proxyAuth(error, proxy: proxy.description) }
    }

    private static func with(_ authorization: String?, _ request: HTTPRequestHead) -> HTTPRequestHead {
        var headers = request.headers
        headers.remove("Proxy-Authorization")
        if let authorization { headers.add("Proxy-Authorization", authorization) }
        return HTTPRequestHead(method: request.method, target: request.target, headers: headers)
    }

    /// The host's name, for NTLM's workstation field.
    private static let workstation: String = {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "BYST" }
        let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "BYST" : String(text.prefix(15)).uppercased()
    }()
}
