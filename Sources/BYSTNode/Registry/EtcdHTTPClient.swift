// HTTP/1.1 to the etcd members' JSON gateways, over TLS with `etcds://`: one connection per
// call (a renewal every TTL/3 is cheap, and a fresh connection never inherits a stalled one),
// a deadline on every call, and a rotation through the members when one fails.
//
//   post(path, json, timeout) ─▶ current member ─▶ EtcdUnaryReader ─▶ EtcdHTTPResponse
//                                  transport error or 5xx ─▶ next member for the next call
//   stream(path, json)        ─▶ current member ─▶ EtcdStreamReader ─▶ lines … end
import BYSTProto
import NIOCore
import NIOPosix
import NIOSSL

final class EtcdHTTPClient {
    /// A unary answer larger than this is refused (ours are a few hundred bytes).
    static let maxResponseBytes = 1 << 20
    /// One NDJSON line of a stream (one watch response for one key).
    static let maxLineBytes = 64 << 10

    let endpoints: [HostPort]
    let eventLoop: EventLoop
    /// Set with `etcds://`: every connection is TLS, verified against it.
    let tls: EtcdSecurity.TLS?
    /// Set with `registry_user`: calls and streams carry its token (EtcdAuth.swift).
    let auth: EtcdAuthenticator?
    /// Index of the member calls go to until it fails.
    private(set) var current = 0
    /// Called with a member's index when calls move away from it (watch streams on it are
    /// suspect too: a hung member never closes them).
    var onMemberFailed: ((Int) -> Void)?

    /// `endpoints` must not be empty.
    init(endpoints: [HostPort], eventLoop: EventLoop, tls: EtcdSecurity.TLS? = nil, auth: EtcdAuthenticator? = nil) {
        precondition(!endpoints.isEmpty, "etcd needs at least one endpoint")
        self.endpoints = endpoints
        self.eventLoop = eventLoop
        self.tls = tls
        self.auth = auth
    }

    /// Member `index` failed a call: later calls go to the next one. Several calls failing
    /// on the same member move on once, not once each.
    func failed(_ index: Int) {
        guard index == current else { return }
        current = (current + 1) % endpoints.count
        onMemberFailed?(index)
    }

    /// POSTs `json` to `path` on the current member, with `token` (if any) as its
    /// `Authorization`. Fails with `EtcdTransportError` when no whole answer came within
    /// `timeout` (the member is then rotated away from); any HTTP status is a success here.
    func post(_ path: String, json: ByteBuffer, token: String?, timeout: TimeAmount) -> EventLoopFuture<EtcdHTTPResponse> {
        let index = current
        let endpoint = endpoints[index]
        let promise = eventLoop.makePromise(of: EtcdHTTPResponse.self)
        let reader = EtcdUnaryReader(request: request(path, json: json, to: endpoint, token: token, streaming: false),
                                     promise: promise, limit: Self.maxResponseBytes)
        let connected = connect(to: endpoint, timeout: timeout, handler: reader)
        let deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            promise.fail(EtcdTransportError("no answer from etcd \(endpoint) within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        connected.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                // However the call ends (answer, error, deadline), its connection goes.
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                promise.fail(EtcdTransportError("cannot connect to etcd \(endpoint): \(error)"))
            }
        }
        let result = promise.futureResult.assumeIsolated()
        result.whenComplete { [self] outcome in
            deadline.cancel()
            switch outcome {
            case .success(let response) where response.status >= 500: failed(index)
            case .success: break
            case .failure: failed(index)
            }
        }
        return promise.futureResult
    }

    /// Opens a streaming RPC on the current member (with the auth token, once known);
    /// `onLine` gets each NDJSON line and `onEnd` is called once if the stream ends other
    /// than by the reader's `close()`. Returns the reader (to close it) and the member's
    /// index (for `failed`).
    func stream(_ path: String, json: ByteBuffer, connectTimeout: TimeAmount,
                onLine: @escaping (ByteBuffer) -> Void, onEnd: @escaping (String) -> Void) -> (EtcdStreamReader, Int) {
        let index = current
        let endpoint = endpoints[index]
        let reader = EtcdStreamReader(maxLine: Self.maxLineBytes, onLine: onLine, onEnd: onEnd)
        withToken(timeout: connectTimeout) { [self] token in
            guard !reader.isClosed else { return }
            switch token {
            case .failure(let error):
                reader.connectFailed("\(error)")
            case .success(let token):
                reader.request = request(path, json: json, to: endpoint, token: token, streaming: true)
                connect(to: endpoint, timeout: connectTimeout, handler: reader).assumeIsolated().whenFailure { error in
                    reader.connectFailed("cannot connect to etcd \(endpoint): \(error)")
                }
            }
        }
        return (reader, index)
    }

    var description: String {
        "etcd " + endpoints.map { "\(tls == nil ? "http" : "https")://\($0)" }.joined(separator: ",")
    }

    private func request(_ path: String, json: ByteBuffer, to endpoint: HostPort, token: String?, streaming: Bool) -> ByteBuffer {
        var headers = HTTPHeaders([("Host", endpoint.description), ("Content-Type", "application/json"),
                                   ("Content-Length", "\(json.readableBytes)")])
        if let token { headers.add("Authorization", token) }
        // A streaming answer outlives the request body; a unary one is the connection's last.
        if !streaming { headers.add("Connection", "close") }
        var bytes = ByteBuffer()
        bytes.reserveCapacity(256 + json.readableBytes)
        HTTPRequestHead(method: "POST", target: path, headers: headers).write(into: &bytes)
        var body = json
        bytes.writeBuffer(&body)
        return bytes
    }

    private func connect(to endpoint: HostPort, timeout: TimeAmount, handler: some ChannelHandler) -> EventLoopFuture<Channel> {
        let bound = NIOLoopBound(handler, eventLoop: eventLoop)
        let tls = self.tls
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // Without a configured name, an IP member is checked against the certificate's IP SANs.
                        let handler = try NIOSSLClientHandler(context: tls.context,
                                                              serverHostname: TLSSetup.sniName(tls.serverName ?? endpoint.host))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
        return AddressResolver.resolve(endpoint, on: eventLoop).assumeIsolated()
            .flatMap { bootstrap.connect(to: $0) }.nonisolated()
    }
}
