// The etcd backend of the port registry, over etcd's v3 JSON gateway (etcd ≥ 3.4), plain or
// TLS, with or without a user (EtcdHTTPClient, EtcdAuth.swift):
//
//   start ─▶ lease/grant (retried, rotating members) ─▶ .connected, .renewed
//   every TTL/3: lease/keepalive (deadline TTL/6) ─ TTL ─▶ .renewed(send time + TTL − margin)
//                                                  ├ no TTL ─▶ .lost(each port), grant again
//                                                  └ no answer ─▶ .disconnected, next member
//   register: txn  CREATE(key) == 0 ? put key = "node\ninfo" with our lease : range key
//   unregister: txn  LEASE(key) == ours ? delete key            (retried until done)
//   watch: EtcdPortWatch (range, then a watch stream resumed across members)
//
// Ports live at `/byst/ports/<port>`, attached to our lease: if we die, stop renewing or
// lose the registry for longer than the lease, etcd deletes them and others may claim them.
// `validUntil` only ever comes from an answer etcd gave, timed from when we asked, so it
// never outlasts etcd's own view of the lease (no two owners at once).
import BYSTProto
import Logging
import NIOCore

final class EtcdRegistryClient: RegistryBackend {
    var onEvent: ((RegistryEvent) -> Void)?
    private(set) var validUntil: Nanoseconds?
    var description: String { http.description }
    var isConnected: Bool { connection == .up }

    let nodeName: String
    private let requestedLease: Duration
    private let eventLoop: EventLoop
    private let logger: Logger
    private let http: EtcdHTTPClient

    private enum Connection { case unknown, up, down }
    private var connection = Connection.unknown
    private var started = false
    private var stopped = false
    /// The lease our keys hang on, with its TTL as etcd granted it.
    private var lease: (id: Int64, ttl: Duration)?
    private var granting = false
    /// Consecutive failed grants or keepalives (for the backoff).
    private var failures = 0
    /// The next grant attempt or keepalive.
    private var timer: Scheduled<Void>?
    /// Ports we own under the current lease, with the revision at which we saw them ours.
    private var owned: [String: Int64] = [:]
    private var watches: [String: EtcdPortWatch] = [:]
    /// Operations waiting for an earlier one on the same key (see `serialized`).
    private var keyQueues: [String: [(@escaping () -> Void) -> Void]] = [:]

    static let initialBackoff: Duration = .milliseconds(200)
    static let maximumBackoff: Duration = .seconds(2)
    static let revokeTimeout: Duration = .seconds(1)

    /// `security`: TLS for `etcds://`, credentials for `registry_user` (loaded at start).
    init(endpoints: [HostPort], nodeName: String, lease: Duration, security: EtcdSecurity = EtcdSecurity(), eventLoop: EventLoop,
         logger: Logger) {
        self.nodeName = nodeName
        self.requestedLease = lease
        self.eventLoop = eventLoop
        self.logger = logger
        self.http = EtcdHTTPClient(endpoints: endpoints, eventLoop: eventLoop, tls: security.tls,
                                   auth: security.credentials.map { EtcdAuthenticator(credentials: $0, logger: logger) })
        http.onMemberFailed = { [weak self] index in
            guard let self else { return }
            for watch in watches.values { watch.memberFailed(index) }
        }
    }

    /// The key of `port`.
    static func key(_ port: String) -> String { EtcdBytes.encode("/byst/ports/\(port)") }

    /// The owner a key's value names: `<node>\n<info>` (a value without a newline is all node).
    static func owner(_ kv: EtcdKeyValue) -> PortOwner {
        let value = EtcdBytes.decode(kv.value) ?? ""
        guard let newline = value.firstIndex(of: "\n") else { return PortOwner(node: value, info: "") }
        return PortOwner(node: String(value[..<newline]), info: String(value[value.index(after: newline)...]))
    }

    /// The TTL we ask for: the lease in whole seconds, rounded up, at least etcd's minimum of 2.
    static func leaseSeconds(_ lease: Duration) -> Int64 {
        let (seconds, attoseconds) = lease.components
        return max(2, seconds + (attoseconds > 0 ? 1 : 0))
    }

    /// 200 ms doubling to 2 s.
    static func backoff(_ failures: Int) -> Duration {
        min(initialBackoff * (1 << min(max(failures - 1, 0), 10)), maximumBackoff)
    }

    /// Deadline of grants, txns, ranges and a watch's creation: etcd without quorum holds
    /// requests for seconds, and we would rather try another member.
    private var callTimeout: Duration { min(max(requestedLease / 3, .seconds(1)), .seconds(5)) }

    /// Deadline of one keepalive: well under the TTL/3 between them, so a dead member is
    /// skipped and the next one renews the lease in time.
    private static func keepaliveTimeout(_ ttl: Duration) -> Duration { max(ttl / 6, .milliseconds(200)) }

    // MARK: Lifecycle

    func start() {
        guard !started, !stopped else { return }
        started = true
        grant()
    }

    @discardableResult
    func stop() -> EventLoopFuture<Void> {
        guard !stopped else { return eventLoop.makeSucceededVoidFuture() }
        stopped = true
        timer?.cancel()
        for watch in watches.values { watch.stop() }
        watches.removeAll()
        // Queued claims and releases still run, and see `stopped`: each completion is called.
        owned.removeAll()
        validUntil = nil
        guard let lease else { return eventLoop.makeSucceededVoidFuture() }
        self.lease = nil
        return revoke(lease.id)
    }

    /// Revoking deletes our keys at once instead of when the lease runs out (best effort):
    /// the future succeeds when etcd answered or the call failed.
    @discardableResult
    private func revoke(_ id: Int64) -> EventLoopFuture<Void> {
        let answered = eventLoop.makePromise(of: Void.self)
        http.call("/v3/lease/revoke", EtcdLeaseIDRequest(ID: EtcdInt(id)), as: EtcdResponseHeaderOnly.self,
                  timeout: Self.revokeTimeout) { [logger] result in
            if case .failure(let error) = result { logger.debug("etcd: revoking lease \(id) failed: \(error)") }
            answered.succeed()
        }
        return answered.futureResult
    }

    // MARK: Lease

    private func grant() {
        guard !stopped, !granting else { return }
        granting = true
        let sent = Clocks.monotonic()
        let request = EtcdLeaseGrantRequest(TTL: Self.leaseSeconds(requestedLease))
        http.call("/v3/lease/grant", request, as: EtcdLeaseGrantResponse.self, timeout: callTimeout) { [self] result in
            granting = false
            switch result {
            case .success(let response):
                guard let id = response.ID?.value, id != 0, let ttl = response.TTL?.value, ttl > 0 else {
                    return grantFailed("etcd granted no lease: \(response.error ?? "no ID or TTL in the answer")")
                }
                // Stopped meanwhile: give the lease back rather than let it linger.
                guard !stopped else { revoke(id); return }
                granted(id: id, ttl: .seconds(ttl), sent: sent)
            case .failure(let error):
                grantFailed("lease grant failed: \(error)")
            }
        }
    }

    private func granted(id: Int64, ttl: Duration, sent: Nanoseconds) {
        lease = (id, ttl)
        failures = 0
        logger.info("etcd lease \(id) granted for \(ttl.components.seconds) s by \(http.endpoints[http.current])")
        let until = sent + (ttl - leaseSafetyMargin(ttl)).nanoseconds
        validUntil = until
        connection = .up
        scheduleKeepalive(in: ttl / 3)
        onEvent?(.connected)
        guard !stopped, lease?.id == id else { return }
        onEvent?(.renewed(validUntil: until, sentAt: sent))
    }

    private func grantFailed(_ reason: String) {
        guard !stopped else { return }
        failures += 1
        wentDown(reason)
        timer?.cancel()
        timer = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(Self.backoff(failures))) { [self] in grant() }
    }

    private func scheduleKeepalive(in delay: Duration) {
        timer?.cancel()
        timer = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(max(delay, .zero))) { [self] in keepalive() }
    }

    private func keepalive() {
        guard !stopped, let lease else { return }
        let sent = Clocks.monotonic()
        http.call("/v3/lease/keepalive", EtcdLeaseIDRequest(ID: EtcdInt(lease.id)), as: EtcdLeaseKeepAliveResponse.self,
                  streamed: true, timeout: Self.keepaliveTimeout(lease.ttl)) { [self] result in
            guard !stopped, self.lease?.id == lease.id else { return }
            switch result {
            case .success(let response):
                // A dead lease (expired, revoked, unknown) is answered without a TTL.
                guard let ttl = response.TTL?.value, ttl > 0 else { return leaseLost("etcd says lease \(lease.id) is gone") }
                renewed(ttl: .seconds(ttl), sent: sent)
            case .failure(let error) where error.isLeaseNotFound:
                leaseLost("etcd says lease \(lease.id) is gone")
            case .failure(let error):
                failures += 1
                wentDown("lease keepalive failed: \(error)")
                scheduleKeepalive(in: min(Self.backoff(failures), lease.ttl / 3))
            }
        }
    }

    private func renewed(ttl: Duration, sent: Nanoseconds) {
        lease?.ttl = ttl
        failures = 0
        let until = sent + (ttl - leaseSafetyMargin(ttl)).nanoseconds
        validUntil = until
        scheduleKeepalive(in: ttl / 3 - .nanoseconds(Int64(clamping: Clocks.monotonic() &- sent)))
        if connection != .up {
            connection = .up
            logger.info("etcd reachable again via \(http.endpoints[http.current])")
            onEvent?(.connected)
            guard !stopped else { return }
        }
        onEvent?(.renewed(validUntil: until, sentAt: sent))
    }

    /// The lease is dead at etcd, and with it every key we put: say so, then start over.
    private func leaseLost(_ reason: String) {
        let ports = owned.keys.sorted()
        logger.warning("etcd: \(reason); \(ports.isEmpty ? "no ports owned" : "lost ports \(ports.joined(separator: ", "))")")
        lease = nil
        owned.removeAll()
        validUntil = nil
        timer?.cancel()
        for port in ports { onEvent?(.lost(port: port)) }
        grant()
    }

    /// Reports the loss of the registry once per outage.
    private func wentDown(_ reason: String) {
        if connection != .down {
            connection = .down
            logger.warning("etcd unreachable: \(reason)")
            onEvent?(.disconnected(reason: reason))
        } else {
            logger.debug("etcd still unreachable: \(reason)")
        }
    }

    // MARK: Ports

    func register(_ port: String, info: String, completion: @escaping (Result<RegisterOutcome, RegistryFailure>) -> Void) {
        guard !stopped else { return completion(.failure(RegistryFailure("the etcd client is stopped"))) }
        serialized(port) { [self] done in
            claim(port, info: info) { result in
                done()
                completion(result)
            }
        }
    }

    private func claim(_ port: String, info: String, completion: @escaping (Result<RegisterOutcome, RegistryFailure>) -> Void) {
        guard !stopped, let lease else {
            return completion(.failure(RegistryFailure(stopped ? "the etcd client is stopped" : "no etcd lease yet")))
        }
        let key = Self.key(port)
        let put = EtcdPutRequest(key: key, value: EtcdBytes.encode("\(nodeName)\n\(info)"), lease: EtcdInt(lease.id))
        let txn = EtcdTxnRequest(compare: [.absent(key)], success: [EtcdRequestOp(request_put: put)],
                                 failure: [EtcdRequestOp(request_range: EtcdRangeRequest(key: key))])
        http.call("/v3/kv/txn", txn, as: EtcdTxnResponse.self, timeout: callTimeout) { [self] result in
            let current = self.lease?.id == lease.id
            switch result {
            case .failure(let error):
                if error.isLeaseNotFound, current, !stopped { leaseLost("etcd no longer knows lease \(lease.id)") }
                completion(.failure(RegistryFailure("claiming port \(port) at etcd failed: \(error)")))
            case .success(let response):
                let kv = response.responses?.first?.response_range?.kvs?.first
                if response.succeeded == true || kv?.leaseID == lease.id {
                    // Put under a lease that died meanwhile, the key died with it.
                    guard current, !stopped else {
                        return completion(.failure(RegistryFailure("the etcd lease ended while claiming port \(port)")))
                    }
                    owned[port] = response.succeeded == true ? response.header?.revision?.value ?? 0 : kv?.modRevision ?? 0
                    completion(.success(.owned))
                } else if let kv {
                    completion(.success(.taken(Self.owner(kv))))
                } else {
                    completion(.failure(RegistryFailure("etcd's answer to claiming port \(port) has neither success nor the key")))
                }
            }
        }
    }

    func unregister(_ port: String) {
        owned[port] = nil
        guard !stopped, let lease else { return }
        serialized(port) { [self] done in release(port, lease: lease.id, attempt: 1, done: done) }
    }

    /// Deletes the key if our lease still holds it. Retried while the lease lives: a key left
    /// behind would stay ours for as long as we keep renewing.
    private func release(_ port: String, lease id: Int64, attempt: Int, done: @escaping () -> Void) {
        guard !stopped, lease?.id == id, owned[port] == nil else { return done() }
        let key = Self.key(port)
        let txn = EtcdTxnRequest(compare: [.leased(key, to: id)], success: [EtcdRequestOp(request_delete_range: EtcdRangeRequest(key: key))])
        http.call("/v3/kv/txn", txn, as: EtcdTxnResponse.self, timeout: callTimeout) { [self] result in
            switch result {
            case .success:
                done()
            case .failure(let error) where error.isLeaseNotFound:
                done()
            case .failure(.refused(let status, let message)):
                logger.warning("etcd refused to release port \(port) (HTTP \(status)): \(message)")
                done()
            case .failure(let error):
                logger.debug("etcd: releasing port \(port) failed (attempt \(attempt)): \(error)")
                eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(Self.backoff(attempt))) { [self] in
                    release(port, lease: id, attempt: attempt + 1, done: done)
                }
            }
        }
    }

    /// Runs `operation` once the earlier ones on `port` called their `done`: a release and a
    /// later claim of the same port reach etcd in the order they were made.
    private func serialized(_ port: String, _ operation: @escaping (_ done: @escaping () -> Void) -> Void) {
        if keyQueues[port] != nil {
            keyQueues[port]?.append(operation)
            return
        }
        keyQueues[port] = []
        operation { [self] in next(port) }
    }

    private func next(_ port: String) {
        guard var queue = keyQueues[port] else { return }
        guard !queue.isEmpty else {
            keyQueues[port] = nil
            return
        }
        let operation = queue.removeFirst()
        keyQueues[port] = queue
        operation { [self] in next(port) }
    }

    // MARK: Watches

    func watch(_ port: String) {
        guard !stopped else { return }
        if let existing = watches[port] {
            if let owner = existing.reported { onEvent?(.owner(port: port, owner)) }
            return
        }
        let watch = EtcdPortWatch(port: port, http: http, timeout: callTimeout, logger: logger) { [weak self] observation in
            self?.observed(port, observation)
        }
        watches[port] = watch
        watch.start()
    }

    private func observed(_ port: String, _ observation: EtcdPortWatch.Observation) {
        guard !stopped else { return }
        // A key of ours that changed after we took it: deleted, or someone else's now.
        if let since = owned[port], observation.revision > since, observation.lease != lease?.id {
            owned[port] = nil
            logger.warning("etcd: port \(port) is no longer ours (owner now: \(observation.owner?.node ?? "none"))")
            onEvent?(.lost(port: port))
        }
        if observation.changed { onEvent?(.owner(port: port, observation.owner)) }
    }
}
