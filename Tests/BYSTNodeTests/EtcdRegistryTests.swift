import BYSTProto
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import BYSTNode

/// EtcdRegistryClient against a real single-member etcd on loopback (claims, owners seen by
/// another node, watches, keepalives, lease loss, an etcd restart), and against scripted
/// servers for watch resumption and broken or hostile answers.
@Suite(.serialized) struct EtcdRegistryTests {
    let capture = LogCapture()

    static let infoA = "10.0.0.1:443 [2001:db8::1]:443"
    static let infoB = "10.0.0.2:443"

    // MARK: Real etcd

    @Test func claimsOwnersAndWatchesAcrossTwoNodes() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.close() }
        try await etcd.start()
        let a = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-a", lease: .seconds(5), capture: capture)
        let b = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-b", lease: .seconds(5), capture: capture)
        defer { a.close(); b.close() }
        try await a.start()
        try await b.start()

        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned), "claiming our own port again")
        let ownerA = PortOwner(node: "gw-a", info: Self.infoA)
        #expect(try await b.register("443", info: Self.infoB) == .success(.taken(ownerA)))

        try await b.watch("443")
        try await b.expectEvent(.owner(port: "443", ownerA))
        try await a.unregister("443")
        try await b.expectEvent(.owner(port: "443", nil))

        #expect(try await b.register("443", info: Self.infoB) == .success(.owned))
        let ownerB = PortOwner(node: "gw-b", info: Self.infoB)
        try await b.expectOwners("443", [ownerA, nil, ownerB])
        #expect(try await a.register("443", info: Self.infoA) == .success(.taken(ownerB)))
        try await a.watch("443")
        try await a.expectOwners("443", [ownerB])
        #expect(!a.events.value.contains { if case .lost = $0 { true } else { false } })
        #expect(!b.events.value.contains { if case .lost = $0 { true } else { false } })
        #expect(!capture.contains("malformed"), "etcd's HTTP misread")
    }

    @Test func keepalivesAdvanceValidUntil() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.close() }
        try await etcd.start()
        let a = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-a", lease: .seconds(2), capture: capture)
        defer { a.close() }
        let before = Clocks.monotonic()
        try await a.start()
        let first = try #require(try await a.validUntil())
        // Granted at TTL 2 s: valid for 2 s − the 400 ms margin, from when the grant was sent.
        #expect(first >= before + 1_600_000_000 && first <= Clocks.monotonic() + 1_600_000_000)
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))

        // Longer than the TTL: only keepalives keep the lease (and the port) alive.
        try await Task.sleep(for: .milliseconds(3_000))
        let later = try #require(try await a.validUntil())
        #expect(later >= first + 1_500_000_000, "validUntil did not advance: \(first) → \(later)")
        #expect(later <= Clocks.monotonic() + 1_600_000_000)
        let renewals = a.events.value.filter { if case .renewed = $0 { true } else { false } }.count
        #expect(renewals >= 4, "only \(renewals) renewals in 3 s at TTL 2 s")
        #expect(a.events.value.filter { $0 == .connected }.count == 1)
        #expect(!a.events.value.contains { if case .disconnected = $0 { true } else { false } })
        #expect(!a.events.value.contains { if case .lost = $0 { true } else { false } })
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))
    }

    @Test func aRevokedLeaseLosesItsPorts() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.close() }
        try await etcd.start()
        let a = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-a", lease: .seconds(3), capture: capture)
        let b = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-b", lease: .seconds(3), capture: capture)
        defer { a.close(); b.close() }
        try await a.start()
        try await b.start()
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))
        #expect(try await a.register("8443", info: Self.infoA) == .success(.owned))
        try await b.watch("443")
        try await b.expectEvent(.owner(port: "443", PortOwner(node: "gw-a", info: Self.infoA)))
        // A follows one of its own ports too: the loss may show there first, and is told once.
        try await a.watch("8443")
        try await a.expectOwners("8443", [PortOwner(node: "gw-a", info: Self.infoA)])

        // Revoke A's lease behind its back, through the gateway.
        let port = etcd.clientPort
        let key = EtcdBytes.encode("/byst/ports/443")
        let range = try await onThread { try EtcdProcess.post(port: port, "/v3/kv/range", #"{"key":"\#(key)"}"#) }
        let object = try JSONSerialization.jsonObject(with: Data(range.utf8)) as? [String: Any]
        let kv = try #require((object?["kvs"] as? [[String: Any]])?.first, "\(range)")
        let lease = try #require(kv["lease"] as? String)
        let revoked = try await onThread { try EtcdProcess.post(port: port, "/v3/lease/revoke", #"{"ID":"\#(lease)"}"#) }
        #expect(revoked.contains("header"), "\(revoked)")

        try await b.expectEvent(.owner(port: "443", nil))
        try await a.expectEvent(.lost(port: "443"))
        try await a.expectEvent(.lost(port: "8443"))
        // A new lease follows: connected again, and the port can be claimed anew.
        let connects = try await a.waitFor { $0.filter { $0 == .connected }.count == 2 }
        #expect(connects, "no new lease after the loss: \(a.events.value)")
        #expect(a.events.value.filter { $0 == .lost(port: "8443") }.count == 1)
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))
        let ownerA = PortOwner(node: "gw-a", info: Self.infoA)
        try await b.expectOwners("443", [ownerA, nil, ownerA])
        #expect(!capture.contains("malformed"), "etcd's HTTP misread")
    }

    @Test func survivesAnEtcdRestart() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.close() }
        try await etcd.start()
        let a = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-a", lease: .seconds(6), capture: capture)
        let b = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "gw-b", lease: .seconds(6), capture: capture)
        defer { a.close(); b.close() }
        try await a.start()
        try await b.start()
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))
        try await b.watch("443")
        try await b.expectEvent(.owner(port: "443", PortOwner(node: "gw-a", info: Self.infoA)))

        etcd.stop()
        let down = try await a.waitFor(seconds: 6) { $0.contains { if case .disconnected = $0 { true } else { false } } }
        #expect(down, "no .disconnected while etcd was down: \(a.events.value)")
        #expect(!(try await a.isConnected()))
        // No confirmation, no extension.
        let frozen = try await a.validUntil()
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await a.validUntil() == frozen)

        try await etcd.start()
        let up = try await a.waitFor(seconds: 10) { $0.filter { $0 == .connected }.count == 2 }
        #expect(up, "not connected again after etcd came back: \(a.events.value)")
        let renewed = try await a.validUntil()
        #expect((renewed ?? 0) > (frozen ?? 0), "validUntil \(String(describing: frozen)) → \(String(describing: renewed))")
        // B's watch resumed on the restarted member: it sees the release.
        try await a.unregister("443")
        try await b.expectEvent(.owner(port: "443", nil), seconds: 10)
        #expect(!a.events.value.contains { if case .lost = $0 { true } else { false } }, "the lease survives a restart")
        #expect(!capture.contains("malformed"), "etcd's HTTP misread")
    }

    @Test func skipsAHungMemberAndARefusingOne() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.close() }
        try await etcd.start()
        // First a member that accepts and never answers, then one that refuses connections.
        let hung = try ScriptedHTTPServer { _, _ in .silence }
        defer { hung.stop() }
        let refusing = HostPort(host: "127.0.0.1", port: try BlockingSocket.freePort())
        let endpoints = [HostPort(host: "127.0.0.1", port: hung.port), refusing, etcd.hostPort]
        let a = try await EtcdClientHarness(endpoints: endpoints, node: "gw-a", lease: .seconds(3), capture: capture)
        defer { a.close() }
        try await a.start()
        #expect(a.events.value.first.map { if case .disconnected = $0 { true } else { false } } == true, "\(a.events.value)")
        #expect(try await a.isConnected())
        #expect(try await a.register("443", info: Self.infoA) == .success(.owned))
        try await a.watch("443")
        try await a.expectOwners("443", [PortOwner(node: "gw-a", info: Self.infoA)])
        let first = try #require(try await a.validUntil())
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(try await a.validUntil() ?? 0 > first, "no renewal through the live member")
        #expect(hung.requests.value.first?.path == "/v3/lease/grant")
    }

    // MARK: Scripted servers

    @Test func watchResumesFromTheLastRevisionAndRereadsAfterCompaction() async throws {
        let key = EtcdBytes.encode("/byst/ports/443")
        @Sendable func kv(_ node: String, revision: Int, lease: Int) -> String {
            let value = EtcdBytes.encode(node + "\ninfo-" + node)
            return #"{"key":"\#(key)","create_revision":"\#(revision)","mod_revision":"\#(revision)","version":"1","value":"\#(value)","lease":"\#(lease)"}"#
        }
        let created = #"{"result":{"header":{"revision":"5"},"created":true}}"#
        let counter = LockedBox<[String: Int]>([:])
        let server = try ScriptedHTTPServer { path, _ in
            let n = counter.withLock { counts in
                counts[path, default: 0] += 1
                return counts[path, default: 0]
            }
            switch (path, n) {
            case ("/v3/kv/range", 1): return .json(#"{"header":{"revision":"5"},"kvs":[\#(kv("gw-x", revision: 4, lease: 11))],"count":"1"}"#)
            case ("/v3/watch", 1): return .stream([created, #"{"result":{"header":{},"canceled":true,"compact_revision":"9"}}"#])
            case ("/v3/kv/range", _): return .json(#"{"header":{"revision":"12"},"kvs":[\#(kv("gw-y", revision: 10, lease: 12))],"count":"1"}"#)
            case ("/v3/watch", 2):
                return .streamThenClose([
                    created,
                    #"{"result":{"header":{"revision":"14"},"events":[{"type":"DELETE","kv":{"key":"\#(key)","mod_revision":"14"}}]}}"#,
                    #"{"result":{"header":{"revision":"15"},"events":[{"kv":\#(kv("gw-z", revision: 15, lease: 13))}]}}"#,
                ])
            case ("/v3/watch", _):
                return .dribble([created, #"{"result":{"header":{"revision":"16"},"events":[{"kv":\#(kv("gw-w", revision: 16, lease: 14))}]}}"#])
            default: return .json(#"{"header":{}}"#)
            }
        }
        defer { server.stop() }
        let client = try await EtcdClientHarness(endpoints: [HostPort(host: "127.0.0.1", port: server.port)], node: "gw-a",
                                                 lease: .seconds(3), capture: capture)
        defer { client.close() }
        try await client.watch("443")
        // The last stream comes a few bytes at a time.
        try await client.expectOwners("443", [PortOwner(node: "gw-x", info: "info-gw-x"), PortOwner(node: "gw-y", info: "info-gw-y"),
                                              nil, PortOwner(node: "gw-z", info: "info-gw-z"), PortOwner(node: "gw-w", info: "info-gw-w")])
        let resumed = try await TestCluster.waitUntil(seconds: 5) { server.requests.value.filter { $0.path == "/v3/watch" }.count >= 3 }
        #expect(resumed, "the watch was not resumed after its stream closed")
        let watches = server.requests.value.filter { $0.path == "/v3/watch" }.map(\.body)
        #expect(watches.count >= 3)
        #expect(watches.first?.contains(#""start_revision":"6""#) == true, "\(watches)")
        #expect(watches.dropFirst().first?.contains(#""start_revision":"13""#) == true, "after compaction: \(watches)")
        #expect(watches.dropFirst(2).first?.contains(#""start_revision":"16""#) == true, "after the stream closed: \(watches)")
        #expect(watches.first?.contains(#""key":"\#(key)""#) == true)
        #expect(server.requests.value.filter { $0.path == "/v3/kv/range" }.count == 2, "read again only after compaction")
    }

    @Test func brokenAnswersAreErrorsNotCrashes() async throws {
        let bigLine = String(repeating: "x", count: 60_000)
        let server = try ScriptedHTTPServer { path, _ in
            switch path {
            case "/junk": .raw("this is not HTTP at all\r\n\r\n")
            case "/html": .json("<html>nope</html>")
            case "/huge": .raw("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n{")
            case "/chunky": .stream(Array(repeating: bigLine, count: 20))
            case "/silent": .silence
            case "/gone": .json(#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#,
                                status: "404 Not Found")
            case "/busy": .json(#"{"error":"etcdserver: request timed out","code":14}"#, status: "503 Service Unavailable")
            case "/truncated": .raw("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"header\":")
            case "/ok": .json(#"{"header":{"revision":"3"}}"#)
            default: .raw("")
            }
        }
        defer { server.stop() }
        let endpoint = HostPort(host: "127.0.0.1", port: server.port)
        let client = try await EtcdClientHarness(endpoints: [endpoint], node: "gw-a", lease: .seconds(3), capture: capture)
        defer { client.close() }
        func failure(_ path: String, timeout: Duration = .milliseconds(800)) async throws -> EtcdCallError? {
            try await client.rawCall(path, to: endpoint, timeout: timeout)
        }

        #expect(try await failure("/ok") == nil)
        let junk = try await failure("/junk")
        #expect(junk?.description.contains("malformed HTTP") == true, "\(String(describing: junk))")
        let html = try await failure("/html")
        #expect(html?.description.contains("unreadable") == true, "\(String(describing: html))")
        let huge = try await failure("/huge", timeout: .seconds(10))
        #expect(huge?.description.contains("exceeds 1048576 bytes") == true, "\(String(describing: huge))")
        let chunky = try await failure("/chunky", timeout: .seconds(10))
        #expect(chunky?.description.contains("exceeds 1048576 bytes") == true, "\(String(describing: chunky))")
        let silent = try await failure("/silent")
        #expect(silent?.description.contains("no answer") == true, "\(String(describing: silent))")
        let gone = try await failure("/gone")
        #expect(gone?.isLeaseNotFound == true, "\(String(describing: gone))")
        let busy = try await failure("/busy")
        if case .unavailable(let reason) = busy { #expect(reason.contains("503")) } else { Issue.record("503: \(String(describing: busy))") }
        let truncated = try await failure("/truncated")
        #expect(truncated?.description.contains("closed the connection") == true, "\(String(describing: truncated))")
        let empty = try await failure("/empty")
        #expect(empty != nil)
    }

    @Test func aGarbageRegistryFailsRegistrationsCleanly() async throws {
        let server = try ScriptedHTTPServer { path, _ in
            switch path {
            case "/v3/lease/grant": .json(#"{"header":{"revision":"1"},"ID":"7587","TTL":"30"}"#)
            case "/v3/kv/txn": .raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            case "/v3/kv/range": .json(#"{"header":{"revision":"5"}}"#)
            case "/v3/watch": .stream([#"{"result":{"header":{"revision":"5"},"created":true}}"#, String(repeating: "y", count: 70_000)])
            default: .json("{}")
            }
        }
        defer { server.stop() }
        let client = try await EtcdClientHarness(endpoints: [HostPort(host: "127.0.0.1", port: server.port)], node: "gw-a",
                                                 lease: .seconds(30), capture: capture)
        defer { client.close() }
        let early = try await client.register("443", info: Self.infoA)
        #expect(early == .failure(RegistryFailure("no etcd lease yet")))
        try await client.start()
        for _ in 0..<2 {
            let result = try await client.register("443", info: Self.infoA)
            guard case .failure(let failure) = result else {
                Issue.record("registered against garbage: \(result)")
                continue
            }
            #expect(failure.description.contains("claiming port 443"), "\(failure)")
            #expect(failure.description.contains("malformed HTTP"), "\(failure)")
        }
        // A watch line beyond 64 KiB ends the stream (and the watch tries again).
        try await client.watch("443")
        try await client.expectEvent(.owner(port: "443", nil))
        let refused = try await TestCluster.waitUntil(seconds: 5) { capture.contains("exceeds 65536 bytes") }
        #expect(refused, "the oversized watch line was not refused")
        // `stop` completes once etcd answered the revocation: no waiting after it.
        try await client.stop()
        #expect(try await client.validUntil() == nil)
        let revoked = server.requests.value.contains { $0.path == "/v3/lease/revoke" && $0.body.contains(#""7587""#) }
        #expect(revoked, "stop completed before the lease was revoked")
    }

    @Test func missingEtcdIsAFailureNotASkip() throws {
        // The real-etcd tests throw `EtcdProcess.Missing` when the binary is absent; this one
        // states the requirement on its own so the cause is obvious in the test report.
        #expect(EtcdProcess.binary() != nil, "\(EtcdProcess.Missing())")
    }
}

/// An EtcdRegistryClient on an event loop of its own, driven from async tests, with the
/// events it reports recorded in order.
final class EtcdClientHarness: Sendable {
    let events = LockedBox<[RegistryEvent]>([])
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let loop: EventLoop
    private let client: NIOLoopBound<EtcdRegistryClient>

    init(endpoints: [HostPort], node: String, lease: Duration, security: EtcdSecurity = EtcdSecurity(), capture: LogCapture,
         logLevel: Logger.Level = .info) async throws {
        let loop = group.next()
        let events = self.events
        let logger = {
            var logger = capture.logger(node)
            logger.logLevel = logLevel
            return logger
        }()
        self.loop = loop
        client = try await loop.submit {
            let client = EtcdRegistryClient(endpoints: endpoints, nodeName: node, lease: lease, security: security, eventLoop: loop,
                                            logger: logger)
            client.onEvent = { event in events.withLock { $0.append(event) } }
            return NIOLoopBound(client, eventLoop: loop)
        }.get()
    }

    /// Starts the client and waits for its first lease (etcd with users hashes passwords with
    /// bcrypt: slow on a loaded machine, so the wait is generous).
    func start() async throws {
        try await onLoop { $0.start() }
        let connected = try await waitFor(seconds: 15) { $0.contains(.connected) }
        guard connected else { throw EtcdTestFailure("no lease within 15 s: \(events.value)") }
    }

    /// Stops the client; returns once etcd answered the lease's revocation.
    func stop() async throws { try await onLoop { $0.stop() }.get() }
    func watch(_ port: String) async throws { try await onLoop { $0.watch(port) } }
    func unregister(_ port: String) async throws { try await onLoop { $0.unregister(port) } }
    func validUntil() async throws -> Nanoseconds? { try await onLoop { $0.validUntil } }
    func isConnected() async throws -> Bool { try await onLoop { $0.isConnected } }

    func register(_ port: String, info: String) async throws -> Result<RegisterOutcome, RegistryFailure> {
        let promise = loop.makePromise(of: Result<RegisterOutcome, RegistryFailure>.self)
        loop.execute { [client] in client.value.register(port, info: info) { promise.succeed($0) } }
        return try await promise.futureResult.get()
    }

    /// A call through a fresh EtcdHTTPClient to `endpoint`: nil when it succeeded.
    /// `timeout`: long enough for a megabyte on a loaded machine, short for the silent server.
    func rawCall(_ path: String, to endpoint: HostPort, timeout: Duration = .milliseconds(800)) async throws -> EtcdCallError? {
        let loop = self.loop
        let promise = loop.makePromise(of: EtcdCallError?.self)
        loop.execute {
            let http = EtcdHTTPClient(endpoints: [endpoint], eventLoop: loop)
            http.call(path, EtcdRangeRequest(key: "eA=="), as: EtcdResponseHeaderOnly.self, timeout: timeout) { result in
                switch result {
                case .success: promise.succeed(nil)
                case .failure(let error): promise.succeed(error)
                }
            }
        }
        return try await promise.futureResult.get()
    }

    func onLoop<T: Sendable>(_ body: @escaping @Sendable (EtcdRegistryClient) -> T) async throws -> T {
        try await loop.submit { [client] in body(client.value) }.get()
    }

    func waitFor(seconds: Double = 5, _ condition: @escaping @Sendable ([RegistryEvent]) -> Bool) async throws -> Bool {
        try await TestCluster.waitUntil(seconds: seconds) { [events] in condition(events.value) }
    }

    /// Waits for `event` (recorded at any time so far).
    func expectEvent(_ event: RegistryEvent, seconds: Double = 5, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let seen = try await waitFor(seconds: seconds) { $0.contains(event) }
        #expect(seen, "no \(event) within \(seconds) s; got \(events.value)", sourceLocation: sourceLocation)
    }

    /// Waits until the owners reported for `port` are `expected`, in order.
    func expectOwners(_ port: String, _ expected: [PortOwner?], seconds: Double = 5,
                      sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let seen = try await TestCluster.waitUntil(seconds: seconds) { ownerEvents(port) == expected }
        #expect(seen, "owners of \(port): \(ownerEvents(port)), expected \(expected)", sourceLocation: sourceLocation)
    }

    /// The owners reported for `port`, in order.
    func ownerEvents(_ port: String) -> [PortOwner?] {
        events.value.compactMap { event in
            guard case .owner(port, let owner) = event else { return nil }
            return .some(owner)
        }
    }

    /// Stops the client (revoking its lease, best effort) and its event loop.
    func close() {
        let client = self.client
        loop.execute { client.value.stop() }
        // Leave the revoke a moment before the loop goes.
        loop.scheduleTask(in: .milliseconds(300)) {}.futureResult.whenComplete { [group] _ in
            group.shutdownGracefully { _ in }
        }
    }
}

extension EtcdProcess {
    var hostPort: HostPort { HostPort(host: "127.0.0.1", port: clientPort) }
}
