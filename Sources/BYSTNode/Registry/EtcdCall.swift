// One JSON RPC through the gateway, typed: encode the request, POST it (with the auth token,
// EtcdAuth.swift), sort the answer.
//
//   2xx ─▶ decode (a streaming RPC's answer: its first line's "result") ─▶ .success
//   no answer, 5xx, garbage ─▶ .unavailable (the member is rotated away from)
//   token rejected ─▶ authenticate again, retry once
//   other status ─▶ .refused(status, etcd's message)
import NIOCore

enum EtcdCallError: Error, Sendable, CustomStringConvertible {
    /// This member could not serve the call; another one may.
    case unavailable(String)
    /// etcd answered and said no (bad request, unknown lease, …).
    case refused(status: Int, message: String)

    /// etcd no longer knows the lease the call named (expired or revoked): HTTP 404, gRPC code 5.
    var isLeaseNotFound: Bool {
        if case .refused(404, let message) = self { return message.contains("lease not found") }
        return false
    }

    var description: String {
        switch self {
        case .unavailable(let reason): reason
        case .refused(let status, let message): "etcd refused (HTTP \(status)): \(message)"
        }
    }
}

extension EtcdHTTPClient {
    /// POSTs `request` to `path` on the current member and decodes its answer as `Response`
    /// (for a streaming RPC such as keepalive, `streamed`: the `result` of its first line).
    /// With credentials, the call carries a token, and a rejected token is renewed and the
    /// call retried once. `completion` runs on the event loop, once.
    func call<Request: Encodable, Response: Decodable>(
        _ path: String, _ request: Request, as: Response.Type, streamed: Bool = false, timeout: Duration,
        retried: Bool = false, completion: @escaping (Result<Response, EtcdCallError>) -> Void
    ) {
        withToken(timeout: TimeAmount(timeout)) { [self] token in
            switch token {
            case .failure(let error):
                completion(.failure(error))
            case .success(let token):
                send(path, request, token: token, as: Response.self, streamed: streamed, timeout: TimeAmount(timeout)) { [self] result in
                    guard case .failure(let error) = result, error.isTokenRejection, !retried else { return completion(result) }
                    guard auth != nil else { return completion(.failure(error.askingForCredentials)) }
                    tokenRejected(token)
                    call(path, request, as: Response.self, streamed: streamed, timeout: timeout, retried: true, completion: completion)
                }
            }
        }
    }

    /// One attempt of `call`, with `token` (nil: none) in its `Authorization` header.
    func send<Request: Encodable, Response: Decodable>(
        _ path: String, _ request: Request, token: String?, as: Response.Type, streamed: Bool, timeout: TimeAmount,
        completion: @escaping (Result<Response, EtcdCallError>) -> Void
    ) {
        let json: ByteBuffer
        do throws(RegistryFailure) { json = try EtcdJSON.encode(request) } catch {
            return completion(.failure(.refused(status: 0, message: error.description)))
        }
        let member = current
        post(path, json: json, token: token, timeout: timeout).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .failure(let error):
                completion(.failure(.unavailable("\(error)")))
            case .success(let response) where (200..<300).contains(response.status):
                do throws(RegistryFailure) {
                    completion(.success(try Self.decode(Response.self, from: response.body, streamed: streamed, path: path)))
                } catch {
                    // A member that answers garbage is as good as down.
                    failed(member)
                    completion(.failure(.unavailable(error.description)))
                }
            case .success(let response):
                let message = Self.errorMessage(response)
                completion(.failure(response.status >= 500 ? .unavailable("etcd \(endpoints[member]): HTTP \(response.status): \(message)")
                                                           : .refused(status: response.status, message: message)))
            }
        }
    }

    private static func decode<Response: Decodable>(_ type: Response.Type, from body: ByteBuffer, streamed: Bool,
                                                    path: String) throws(RegistryFailure) -> Response {
        guard streamed else { return try EtcdJSON.decode(type, from: body, what: "answer to \(path)") }
        // One request, one line: `{"result":{…}}`, or `{"error":{…}}` when the RPC failed.
        let view = body.readableBytesView
        let end = view.firstIndex(of: UInt8(ascii: "\n")) ?? view.endIndex
        let line = ByteBuffer(bytes: view[view.startIndex..<end])
        guard let result = try EtcdJSON.decode(EtcdStreamLine<Response>.self, from: line, what: "answer to \(path)").result else {
            throw RegistryFailure("etcd answered \(path) without a result: \(EtcdJSON.excerpt(line))")
        }
        return result
    }

    /// etcd's own words from an error body (`message`, else `error`), else the status line.
    private static func errorMessage(_ response: EtcdHTTPResponse) -> String {
        if let parsed = try? EtcdJSON.decode(EtcdErrorResponse.self, from: response.body, what: "error"),
           let message = parsed.message ?? parsed.error {
            return String(message.prefix(300))
        }
        return "\(response.reason) \(EtcdJSON.excerpt(response.body))"
    }
}
