import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// Two real nodes in this process linked over HTTP on loopback: duplex and split mode, link
/// recycling, TLS with pinning, and hostile HTTP against the listener.
@Suite(.serialized) struct HTTPIntegrationTests {
    let capture = LogCapture()

    func hubConfig(_ dir: String, httpPort: UInt16, target: UInt16, tls: (cert: String, key: String)? = nil,
                   limits: String = "") -> String {
        """
        [node]
        name = "hub"
        \(tls == nil ? "http_listen" : "https_listen") = ["127.0.0.1:\(httpPort)"]
        \(tls.map { "tls_certificate = \"\($0.cert)\"\ntls_private_key = \"\($0.key)\"" } ?? "")
        \(TestCluster.nodeFiles("hub", dir: dir))

        [limits]
        \(limits)

        [[peer]]
        name = "branch"
        key = "branch"
        allow_targets = ["127.0.0.1:\(target)"]
        """
    }

    func branchConfig(_ dir: String, endpoint: String, extra: String, forward: (UInt16, UInt16)) -> String {
        """
        [node]
        name = "branch"
        \(TestCluster.nodeFiles("branch", dir: dir))

        [[peer]]
        name = "hub"
        key = "hub"
        endpoint = "\(endpoint)"
        links = 2
        \(extra)

        [[forward]]
        listen = "127.0.0.1:\(forward.0)"
        peer = "hub"
        target = "127.0.0.1:\(forward.1)"
        """
    }

    func links(of node: RunningNode) async throws -> Int {
        try await node.status().peers.first?.sessions.first?.links.count ?? 0
    }

    /// Starts hub and branch, waits for 2 links, moves `streams` × `size` bytes through the
    /// forward with SHA-256 checks; the log capture is left for assertions. With
    /// `answerThenCloseProxy` the branch reaches the hub through one (and this returns how
    /// many POST connections it closed after their answer).
    @discardableResult
    func transfer(endpointScheme: String = "http", branchExtra: String, streams: Int = 2, size: Int = 16 << 20,
                  tls: ((cert: String, key: String), String)? = nil, answerThenCloseProxy: Bool = false,
                  whileUp: ((RunningNode) async throws -> Void)? = nil,
                  afterTransfers: ((RunningNode) async throws -> Void)? = nil) async throws -> Int {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let httpPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        // Through such a proxy every POST is a new connection to the hub from one address:
        // more than `handshake_rate` allows (docs/OPERATIONS.md, "HTTP transport").
        let hubLimits = answerThenCloseProxy ? "handshake_rate = 0" : ""
        let hub = try await TestCluster.start(hubConfig(dir, httpPort: httpPort, target: digest.port, tls: tls?.0, limits: hubLimits),
                                              directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        var proxy: AnswerThenCloseProxy?
        if answerThenCloseProxy { proxy = try await AnswerThenCloseProxy.start(targetPort: Int(httpPort)) }
        let endpoint = "\(endpointScheme)://127.0.0.1:\(proxy?.port ?? Int(httpPort))/byst"
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: endpoint, extra: branchExtra + (tls?.1 ?? ""), forward: (forwardPort, digest.port)),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        let up = try await TestCluster.waitUntil(seconds: 15) { try await links(of: branch.node) == 2 }
        #expect(up, "links did not come up: \(capture.lines.withLock { $0.suffix(12).joined(separator: "\n") })")
        try await whileUp?(branch.node)
        let transfers = (0..<streams).map { index in
            Task { try await onThread { try sendThroughForward(port: forwardPort, count: size, seed: UInt64(index + 7)) } }
        }
        for (index, task) in transfers.enumerated() {
            let (sent, received) = try await task.value
            #expect(sent == received, "stream \(index): SHA-256 differs")
        }
        try await afterTransfers?(branch.node)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
        try await proxy?.stop()
        return proxy?.answeredAndClosed.value ?? 0
    }

    @Test func duplexModeCarriesStreamsWhileLinksAreRecycled() async throws {
        try await transfer(branchExtra: "http_mode = \"duplex\"\nrecycle_bytes = \"3MiB\"", afterTransfers: { branch in
            // Recycled links are no losses (`byst status`, last_link_loss).
            let loss = try await branch.status().peers.first?.last_link_loss
            #expect(loss == nil, "\(String(describing: loss))")
        })
        let recycled = capture.lines.withLock { $0.filter { $0.contains("recycling link") }.count }
        let retired = capture.lines.withLock { $0.filter { $0.contains("link retiring") }.count }
        print("HTTP duplex: \(recycled) links recycled, \(retired) retired, 2 × 16 MiB SHA-256-checked")
        #expect(recycled >= 4)
        #expect(retired >= 4)
        #expect(!capture.contains("dead link"))
    }

    @Test func splitModeCarriesStreams() async throws {
        try await transfer(branchExtra: "http_mode = \"split\"") { branch in
            // The hub's GET answers allowed 4 unanswered POSTs, and the branch took them up.
            let limits = try await branch.withNode { node in
                node.peer(named: "hub")?.sessionForNewStream()?.links.values.compactMap { ($0.writeGate as? SplitUpstream)?.unansweredLimit }
            }
            #expect(limits == [4, 4])
        } afterTransfers: { branch in
            // And did write POSTs before earlier ones were answered.
            let most = try await branch.withNode { node in
                node.peer(named: "hub")?.sessionForNewStream()?.links.values
                    .compactMap { ($0.writeGate as? SplitUpstream)?.mostUnanswered }.max() ?? 0
            }
            #expect(most >= 2, "at most \(most) POST unanswered at once: no pipelining")
        }
        #expect(!capture.contains("split-mode upstream"), "an upstream POST failed")
    }

    /// tinyproxy answers each POST as HTTP/1.1 without `Connection: close` and closes the
    /// connection right after, when the next POST is already written. The branch sends that
    /// POST again on a fresh connection (one POST per connection from then on) and the hub
    /// answers a repeat idempotently: the transfer completes and no link is dialled again.
    @Test func splitModeSurvivesAProxyThatClosesAfterEachAnswer() async throws {
        let closes = try await transfer(branchExtra: "http_mode = \"split\"", answerThenCloseProxy: true)
        let lines = capture.lines.withLock { $0 }
        let linksUp = lines.filter { $0.contains("link up") }.count
        let resent = lines.filter { $0.contains("sending it again") || $0.contains("sending them again") }
        let failures = lines.filter { $0.contains("split-mode upstream") && !resent.contains($0) }
        print("answer-then-close proxy: \(closes) POST connections closed after their answer, \(resent.count) POSTs sent again, "
              + "\(linksUp) 'link up' lines")
        #expect(closes > 0, "the proxy closed no connection after an answer")
        #expect(!resent.isEmpty, "no POST was lost and sent again: the test proves nothing")
        #expect(failures.isEmpty, "a link failed: \(failures.prefix(3))")
        #expect(linksUp == 4, "links were dialled again: \(linksUp) 'link up' lines for 2 links on each side")
        #expect(!capture.contains("limit handshake_rate"))
    }

    @Test func autoModeUsesDuplexWhenItWorks() async throws {
        try await transfer(branchExtra: "", size: 4 << 20)
        #expect(capture.contains("HTTP duplex mode works"))
    }

    @Test func httpsWithAPinnedSelfSignedCertificate() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key, pin) = try selfSignedCertificate(in: dir)
        try await transfer(endpointScheme: "https", branchExtra: "", size: 4 << 20,
                           tls: ((cert, key), "tls_pin_sha256 = [\"sha256//\(pin)\"]"))
        // The same certificate as the CA, checked for its name (no pin).
        try await transfer(endpointScheme: "https", branchExtra: "", size: 1 << 20,
                           tls: ((cert, key), "tls_ca_file = \"\(cert)\"\ntls_server_name = \"byst-test\""))
        // A wrong pin: no link comes up, and the log says why.
        let wrongPin = String(repeating: "A", count: 43) + "="
        let wrong = LogCapture()
        let keys = try TestCluster.pairedKeyStores(dir)
        let httpPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(dir, httpPort: httpPort, target: 9, tls: (cert, key)), directory: dir,
                                              name: "hub", keys: keys.hub, capture: wrong)
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: "https://127.0.0.1:\(httpPort)/byst", extra: "tls_pin_sha256 = [\"sha256//\(wrongPin)\"]",
                         forward: (try BlockingSocket.freePort(), 9)),
            directory: dir, name: "branch", keys: keys.branch, capture: wrong)
        try await Task.sleep(for: .seconds(2))
        #expect(try await links(of: branch.node) == 0)
        #expect(wrong.contains("certificate") || wrong.contains("TLS") || wrong.contains("SSL"), "no TLS reason logged")
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    /// Every kind of hostile request gets an HTTP error or a close within bounded time, and a
    /// branch keeps moving data through the same listener meanwhile.
    /// A proxy that passes the branch's close on as a half-close (a FIN towards the hub): the
    /// hub's links go down at once, not after the 5 s dead-link timeout. Raw links through the
    /// relay too (the HTTP listener also takes raw BYST, as after a CONNECT).
    @Test(arguments: ["http_mode = \"duplex\"", "http_mode = \"split\"", "raw"])
    func halfCloseFromAProxyEndsTheHubsLinksAtOnce(_ mode: String) async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let httpPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(dir, httpPort: httpPort, target: digest.port), directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        let relay = try await ChaosRelay.start(targetPort: Int(httpPort), halfCloseTowardsTarget: true)
        let endpoint = mode == "raw" ? "byst://127.0.0.1:\(relay.port)" : "http://127.0.0.1:\(relay.port)/byst"
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: endpoint, extra: mode == "raw" ? "" : mode, forward: (forwardPort, digest.port)),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 15) { try await links(of: branch.node) == 2 })
        #expect(try await TestCluster.waitUntil(seconds: 15) { try await links(of: hub.node) == 2 })
        let started = ContinuousClock.now
        try await branch.node.shutdown()
        let gone = try await TestCluster.waitUntil(seconds: 10) { try await links(of: hub.node) == 0 }
        let elapsed = ContinuousClock.now - started
        #expect(gone, "the hub kept links after the branch left")
        #expect(elapsed < .seconds(2), "the hub's links went down after \(elapsed), not at the FIN")
        let deadLinks = capture.lines.withLock { $0.filter { $0.contains("dead link") }.count }
        #expect(deadLinks == 0, "links ended by the dead-link timeout instead of the FIN")
        try await hub.node.shutdown()
        try await relay.stop()
    }

    @Test func hostileHTTPIsAnsweredAndOthersKeepWorking() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let (dir, hubKeys, branchKeys, digest) = (bed.dir, bed.hubKeys, bed.branchKeys, bed.digest)
        let httpPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(dir, httpPort: httpPort, target: digest.port), directory: dir,
                                              name: "hub", keys: hubKeys, capture: capture)
        let branch = try await TestCluster.start(
            branchConfig(dir, endpoint: "http://127.0.0.1:\(httpPort)/byst", extra: "http_mode = \"duplex\"",
                         forward: (forwardPort, digest.port)),
            directory: dir, name: "branch", keys: branchKeys, capture: capture)
        #expect(try await TestCluster.waitUntil(seconds: 15) { try await links(of: branch.node) == 2 })
        let legit = Task { try await onThread { try sendThroughForward(port: forwardPort, count: 32 << 20, seed: 99) } }

        let chunked = "POST /byst HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let cases: [(name: String, request: String, expect: String)] = [
            ("oversized head", "GET /byst?t=x HTTP/1.1\r\n" + String(repeating: "X-Junk: \(String(repeating: "a", count: 100))\r\n", count: 400),
             "HTTP/1.1 431"),
            ("too many headers", "GET /byst HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 100) + "\r\n", "HTTP/1.1 431"),
            ("invalid chunk size", chunked + "zz\r\n", "HTTP/1.1 400"),
            ("negative chunk size", chunked + "-1\r\n", "HTTP/1.1 400"),
            ("chunk size overflow", chunked + "fffffffffffffffffffffff\r\n", "HTTP/1.1 400"),
            ("content-length and chunked", "POST /byst HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400"),
            ("GET /", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"),
            ("GET without token", "GET /byst HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400"),
            ("bad method", "DELETE /byst HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405"),
            ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 505"),
            ("garbage", "\u{01}\u{02}\u{03} nonsense\r\n\r\n", "HTTP/1.1 400"),
            ("no key: garbage link bytes", chunked + "20\r\nBYST\u{01}\u{01}AAAAAAAA\u{00}\u{10}0123456789abcdef\r\n", "HTTP/1.1 403"),
            ("split POST for unknown token", "POST /byst?t=AAAAAAAAAAAAAAAAAAAAAA&s=3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
             "HTTP/1.1 404"),
        ]
        for item in cases {
            let (response, elapsed) = try await exchange(item.request, port: httpPort)
            #expect(response.hasPrefix(item.expect), "\(item.name): got \(response.prefix(60).debugDescription)")
            // The hub's own refusals carry its marker (PROTOCOL.md §6).
            #expect(response.contains("\r\nBYST-Refusal: "), "\(item.name): no BYST-Refusal in \(response.prefix(200).debugDescription)")
            #expect(elapsed < 12, "\(item.name): took \(elapsed) s")
        }
        // Early EOF in the middle of a chunk, and a slowloris head: closed, the latter with 408.
        let early = try await onThread { () throws -> [UInt8] in
            let socket = try BlockingSocket.connect(port: httpPort)
            defer { socket.close() }
            socket.setReceiveTimeout(seconds: 15)
            try socket.sendText(chunked + "100\r\nabc")
            socket.shutdownWrite()
            return (try? socket.readToEnd()) ?? []
        }
        #expect(early.count < 4096, "early EOF answered with \(early.count) bytes")
        let slowStart = Date()
        let slow = try await onThread { () throws -> String in
            let socket = try BlockingSocket.connect(port: httpPort)
            defer { socket.close() }
            socket.setReceiveTimeout(seconds: 20)
            // A head trickled in a few bytes at a time and never finished.
            for piece in ["GET /by", "st?t=AAAA", "AAAAAAAAAAAAAAAAAA HTTP/1.1\r\n", "X-A: 1\r\n"] {
                try socket.sendText(piece)
                Thread.sleep(forTimeInterval: 2)
            }
            return String(decoding: (try? socket.readToEnd()) ?? [], as: UTF8.self)
        }
        let slowElapsed = Date().timeIntervalSince(slowStart)
        #expect(slow.hasPrefix("HTTP/1.1 408"), "slowloris: \(slow.prefix(40).debugDescription)")
        #expect(slow.contains("\r\nBYST-Refusal: timeout\r\n"))
        #expect(slowElapsed < 16, "slowloris held the connection \(slowElapsed) s")

        let (sent, received) = try await legit.value
        #expect(sent == received, "the legitimate stream was disturbed")
        #expect(try await links(of: branch.node) == 2)
        try await branch.node.shutdown()
        try await hub.node.shutdown()
    }

    /// `http_idle_timeout` (here 1 s): a split POST whose body stops arriving, and a connection
    /// kept alive after a POST's answer, are closed after it — not only at the handshake
    /// deadline (5 s) that ends connections feeding unpaired tokens anyway.
    @Test func splitConnectionsAreClosedAfterTheIdleTimeout() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let httpPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(bed.dir, httpPort: httpPort, target: bed.digest.port, limits: "http_idle_timeout = \"1s\""),
                                              directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        // (request, what the hub answers before it closes)
        let cases: [(name: String, request: String, answer: String)] = [
            ("stalled body", "POST /byst?t=AAAAAAAAAAAAAAAAAAAAAA&s=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", ""),
            ("idle after the answer", "POST /byst?t=BBBBBBBBBBBBBBBBBBBBBA&s=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200"),
        ]
        for item in cases {
            let (response, elapsed) = try await exchange(item.request, port: httpPort)
            #expect(item.answer.isEmpty ? response.isEmpty : response.hasPrefix(item.answer), "\(item.name): got \(response.prefix(60).debugDescription)")
            #expect(elapsed > 0.8 && elapsed < 3.5, "\(item.name): closed after \(elapsed) s")
        }
        #expect(capture.contains("stalled for 1s (http_idle_timeout)"))
        try await hub.node.shutdown()
    }

    /// Sends `request` on a new connection to the hub and reads until it closes (at most 15 s):
    /// what came back, and after how many seconds.
    func exchange(_ request: String, port: UInt16) async throws -> (response: String, seconds: Double) {
        let started = Date()
        let response = try await onThread { () throws -> String in
            let socket = try BlockingSocket.connect(port: port)
            defer { socket.close() }
            socket.setReceiveTimeout(seconds: 15)
            try socket.sendText(request)
            return String(decoding: (try? socket.readToEnd(limit: 64 * 1024)) ?? [], as: UTF8.self)
        }
        return (response, Date().timeIntervalSince(started))
    }

    /// A self-signed certificate from the openssl CLI, and the pin of its public key.
    func selfSignedCertificate(in dir: String) throws -> (cert: String, key: String, pin: String) {
        let cert = dir + "/cert.pem"
        let key = dir + "/key.pem"
        try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                     "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=byst-test",
                                     "-addext", "subjectAltName=DNS:byst-test"])
        let pin = try run("/bin/sh", ["-c", "openssl x509 -in '\(cert)' -pubkey -noout | openssl pkey -pubin -outform der"
                                          + " | openssl dgst -sha256 -binary | base64"])
        return (cert, key, pin.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @discardableResult
    func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CLIRunFailure(tool: tool, status: process.terminationStatus) }
        return String(decoding: data, as: UTF8.self)
    }

    struct CLIRunFailure: Error {
        let tool: String
        let status: Int32
    }
}
