// Follows one port's key for EtcdRegistryClient, for the client's whole life:
//
//   range ─▶ observed(owner, at header.revision) ─▶ watch stream from revision + 1
//   stream: created ▸ events (PUT: owner, DELETE: free) ─▶ observed … ; each moves `next`
//   stream lost / member failed ─▶ (backoff) watch again on the current member from `next`
//   canceled (history compacted) ─▶ (backoff) range again, then watch
import BYSTProto
import Logging
import NIOCore

final class EtcdPortWatch {
    /// What the key held at a revision.
    struct Observation {
        var owner: PortOwner?
        /// The lease the key is attached to (0: none, or deleted).
        var lease: Int64
        /// The event's mod_revision, or the range's store revision.
        var revision: Int64
        /// The owner differs from the one reported before (always true the first time).
        var changed = true
    }

    /// A stream that lived this long worked: its end starts the backoff afresh.
    static let stableStream: Duration = .seconds(10)

    let port: String
    private let key: String
    private let http: EtcdHTTPClient
    private let timeout: Duration
    private let logger: Logger
    private let observed: (Observation) -> Void
    /// The first revision the stream must deliver; nil = the state must be read (again).
    private var next: Int64?
    private var reader: EtcdStreamReader?
    private var member = 0
    private var created = false
    /// When the current stream was opened (monotonic ns).
    private var openedAt: Nanoseconds = 0
    private var timer: Scheduled<Void>?
    private var failures = 0
    private var stopped = false
    /// The owner last reported, so reconnects and re-reads do not repeat it.
    private(set) var reported: PortOwner??

    init(port: String, http: EtcdHTTPClient, timeout: Duration, logger: Logger, observed: @escaping (Observation) -> Void) {
        self.port = port
        self.key = EtcdRegistryClient.key(port)
        self.http = http
        self.timeout = timeout
        self.logger = logger
        self.observed = observed
    }

    func start() { read() }

    func stop() {
        stopped = true
        timer?.cancel()
        reader?.close()
        reader = nil
    }

    /// Calls to member `index` fail: a stream on it is probably dead too, so move.
    func memberFailed(_ index: Int) {
        guard !stopped, reader != nil, member == index else { return }
        logger.info("etcd watch of port \(port): member \(http.endpoints[index]) failed, moving")
        reader?.close()
        reader = nil
        timer?.cancel()
        open()
    }

    private func read() {
        guard !stopped else { return }
        http.call("/v3/kv/range", EtcdRangeRequest(key: key), as: EtcdRangeResponse.self, timeout: timeout) { [self] result in
            guard !stopped else { return }
            switch result {
            case .success(let range):
                guard let revision = range.header?.revision?.value, revision > 0 else {
                    return retry("etcd's range answer has no revision")
                }
                let kv = range.kvs?.first
                report(Observation(owner: kv.map(EtcdRegistryClient.owner), lease: kv?.leaseID ?? 0, revision: revision))
                next = revision + 1
                open()
            case .failure(let error):
                retry("reading port \(port) failed: \(error)")
            }
        }
    }

    private func open() {
        guard !stopped, let next else { return read() }
        let request: ByteBuffer
        do throws(RegistryFailure) {
            request = try EtcdJSON.encode(EtcdWatchRequest(create_request: EtcdWatchCreateRequest(key: key, start_revision: EtcdInt(next))))
        } catch {
            return retry(error.description)
        }
        created = false
        openedAt = Clocks.monotonic()
        let (reader, member) = http.stream("/v3/watch", json: request, connectTimeout: TimeAmount(timeout),
                                           onLine: { [weak self] line in self?.received(line) },
                                           onEnd: { [weak self] reason in self?.ended(reason) })
        self.reader = reader
        self.member = member
        // A member without quorum accepts the connection and never creates the watch.
        timer?.cancel()
        timer = http.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            guard !created else { return }
            ended("etcd did not create the watch within \(timeout)")
        }
    }

    private func received(_ line: ByteBuffer) {
        guard !stopped else { return }
        let response: EtcdWatchResponse
        do throws(RegistryFailure) {
            guard let result = try EtcdJSON.decode(EtcdStreamLine<EtcdWatchResponse>.self, from: line, what: "watch line").result else {
                throw RegistryFailure("etcd's watch stream failed: \(EtcdJSON.excerpt(line))")
            }
            response = result
        } catch {
            return ended(error.description)
        }
        if response.created == true {
            created = true
            timer?.cancel()
        }
        for event in response.events ?? [] {
            // An observer may stop the client (and this watch) from inside `observed`.
            guard !stopped else { return }
            guard let kv = event.kv else { continue }
            next = max(next ?? 0, kv.modRevision + 1)
            report(Observation(owner: event.isDelete ? nil : EtcdRegistryClient.owner(kv), lease: event.isDelete ? 0 : kv.leaseID,
                               revision: kv.modRevision))
        }
        if response.canceled == true {
            // The revision we resume from was compacted away (or etcd dropped the watch):
            // what happened meanwhile is lost, so read the key again.
            let why = response.cancel_reason.map { $0.isEmpty ? "" : ": \($0)" } ?? ""
            logger.info("etcd canceled the watch of port \(port) (compacted at \(response.compact_revision?.value ?? 0))\(why)")
            reader?.close()
            reader = nil
            next = nil
            retry("watch canceled")
        }
    }

    private func ended(_ reason: String) {
        guard !stopped, reader != nil else { return }
        reader?.close()
        reader = nil
        // Only a stream that lasted a while resets the backoff: a member that creates the
        // watch and then breaks it at once is retried ever more slowly, not 5 times a second.
        if Clocks.monotonic() &- openedAt > Self.stableStream.nanoseconds { failures = 0 }
        http.failed(member)
        retry("watch of port \(port) on \(http.endpoints[member]) ended: \(reason)")
    }

    /// Tries again after a backoff: 200 ms doubling to 2 s.
    private func retry(_ reason: String) {
        guard !stopped else { return }
        failures += 1
        if failures == 1 { logger.warning("etcd: \(reason); retrying") } else { logger.debug("etcd: \(reason); retrying") }
        timer?.cancel()
        timer = http.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(EtcdRegistryClient.backoff(failures))) { [self] in
            open()
        }
    }

    private func report(_ observation: Observation) {
        var observation = observation
        observation.changed = reported != .some(observation.owner)
        reported = .some(observation.owner)
        observed(observation)
    }
}
