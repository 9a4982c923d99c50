// etcd's user/password authentication through the JSON gateway, for EtcdHTTPClient:
//
//   first call ─▶ POST /v3/auth/authenticate {name, password} ─▶ token ─▶ `Authorization: <token>`
//                 on every call and stream after it (one authentication at a time; others wait)
//   "invalid auth token" (expired), "user name is empty" (auth enabled since) ─▶ forget the
//                 token, authenticate again and retry the call once (EtcdCall.swift)
//   refused (wrong user or password) ─▶ an error in the log; attempts then wait 1 s doubling to 30 s
//   etcd without authentication ─▶ a warning, and calls go without a token
//
// Neither the password nor a token is ever logged.
import BYSTProto
import Logging
import NIOCore

final class EtcdAuthenticator {
    private enum State {
        /// Authenticate before the next call.
        case none
        case token(String)
        /// etcd said authentication is not enabled: calls go without a token.
        case disabled
    }

    let credentials: EtcdSecurity.Credentials
    private let logger: Logger
    private var state = State.none
    /// Calls waiting for the authentication in flight (non-empty while one is).
    private var waiting: [(Result<String?, EtcdCallError>) -> Void] = []
    /// Consecutive refusals, the last one, and when the next attempt may go.
    private var refusals = 0
    private var refusal: EtcdCallError?
    private var retryAt: Nanoseconds = 0

    static let initialRetry: Duration = .seconds(1)
    static let maximumRetry: Duration = .seconds(30)

    init(credentials: EtcdSecurity.Credentials, logger: Logger) {
        self.credentials = credentials
        self.logger = logger
    }

    /// 1 s doubling to 30 s.
    static func retryDelay(_ refusals: Int) -> Duration {
        min(initialRetry * (1 << min(max(refusals - 1, 0), 10)), maximumRetry)
    }

    fileprivate var current: String?? {
        switch state {
        case .none: nil
        case .token(let token): .some(token)
        case .disabled: .some(nil)
        }
    }

    fileprivate func rejected(_ token: String?) {
        switch state {
        case .token(let current) where current == token:
            logger.debug("etcd: token of user \(credentials.user.configQuoted) expired or revoked; authenticating again")
            state = .none
        case .disabled where token == nil: state = .none
        default: break  // a newer token (or none yet): nothing to forget
        }
    }

    /// Queues `completion`; true if it is the first, whose caller must authenticate.
    fileprivate func enqueue(_ completion: @escaping (Result<String?, EtcdCallError>) -> Void) -> Bool {
        waiting.append(completion)
        return waiting.count == 1
    }

    /// A refusal still within its backoff.
    fileprivate var pendingRefusal: EtcdCallError? {
        guard let refusal, Clocks.monotonic() < retryAt else { return nil }
        return refusal
    }

    fileprivate func finish(_ result: Result<EtcdAuthenticateResponse, EtcdCallError>) {
        let outcome: Result<String?, EtcdCallError>
        switch result {
        case .success(let response):
            guard let token = response.token, !token.isEmpty else {
                outcome = .failure(.unavailable("etcd answered the authentication without a token"))
                break
            }
            if refusals > 0 { logger.info("etcd: authenticated as user \(credentials.user.configQuoted)") }
            refusals = 0
            refusal = nil
            state = .token(token)
            outcome = .success(token)
        case .failure(.refused(_, let message)) where message.contains("authentication is not enabled"):
            logger.warning("etcd: registry_user is set but etcd has authentication disabled: anyone who reaches it can change the ports")
            state = .disabled
            outcome = .success(nil)
        case .failure(.refused(let status, let message)):
            refusals += 1
            let delay = Self.retryDelay(refusals)
            let error = EtcdCallError.refused(status: status, message: "authenticating as user \(credentials.user.configQuoted): \(message)")
            refusal = error
            retryAt = Clocks.monotonic() + delay.nanoseconds
            let text = "etcd: \(error); check registry_user and registry_password_file (next attempt in \(delay.configText))"
            if refusals == 1 { logger.error("\(text)") } else { logger.debug("\(text)") }
            outcome = .failure(error)
        case .failure(let error):
            outcome = .failure(error)
        }
        let completions = waiting
        waiting.removeAll()
        for completion in completions { completion(outcome) }
    }
}

struct EtcdAuthenticateRequest: Encodable {
    var name: String
    var password: String
}

struct EtcdAuthenticateResponse: Decodable {
    var token: String?
}

extension EtcdCallError {
    /// etcd did not accept the call's token (or its absence): HTTP 401 "invalid auth token",
    /// or 400 "user name is empty" / "revision of auth store is old".
    var isTokenRejection: Bool {
        guard case .refused(let status, let message) = self else { return false }
        return status == 401 || message.contains("user name is empty") || message.contains("revision of auth store is old")
    }

    /// A token rejection seen without credentials, saying what to configure.
    var askingForCredentials: EtcdCallError {
        guard case .refused(let status, let message) = self else { return self }
        return .refused(status: status, message: message + " (etcd requires authentication: set registry_user and registry_password_file)")
    }
}

extension EtcdHTTPClient {
    /// The token to send (nil: none needed), authenticating first if there is none yet.
    /// `completion` runs on the event loop, once; at once when the token is known.
    func withToken(timeout: TimeAmount, _ completion: @escaping (Result<String?, EtcdCallError>) -> Void) {
        guard let auth else { return completion(.success(nil)) }
        if let known = auth.current { return completion(.success(known)) }
        if let refusal = auth.pendingRefusal { return completion(.failure(refusal)) }
        guard auth.enqueue(completion) else { return }
        let request = EtcdAuthenticateRequest(name: auth.credentials.user, password: auth.credentials.password)
        send("/v3/auth/authenticate", request, token: nil, as: EtcdAuthenticateResponse.self, streamed: false, timeout: timeout) { result in
            auth.finish(result)
        }
    }

    /// etcd refused a call made with `token`: the next call authenticates again.
    func tokenRejected(_ token: String?) { auth?.rejected(token) }
}
