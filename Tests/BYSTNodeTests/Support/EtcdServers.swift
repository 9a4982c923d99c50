import Foundation
import Glibc

/// A real single-member etcd on loopback (free high ports, a temporary data directory), with
/// etcd's usual single-member flags (below). Throws a clear error when the `etcd` binary is
/// missing: the tests that need it fail rather than skip.
final class EtcdProcess {
    let clientPort: UInt16
    let peerPort: UInt16
    let directory: String
    /// More etcd flags (e.g. `--auth-token-ttl`).
    var extraArguments: [String] = []
    private var process: Process?

    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "the etcd binary is not installed (apt-get install etcd-server etcd-client; scripts/setup.sh lists them)"
        }
    }

    init() throws {
        clientPort = try BlockingSocket.freePort()
        peerPort = try BlockingSocket.freePort()
        directory = try TestCluster.temporaryDirectory()
    }

    var endpoint: String { "http://127.0.0.1:\(clientPort)" }

    /// Starts etcd (again, on the same ports and data) and waits until /health says true.
    func start() async throws {
        guard let binary = Self.binary() else { throw Missing() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        let peer = "http://127.0.0.1:\(peerPort)"
        process.arguments = [
            "--name", "byst-test", "--data-dir", "\(directory)/data",
            "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "byst-test=\(peer)", "--logger=zap", "--log-outputs=stderr",
        ] + extraArguments
        let log = "\(directory)/etcd.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        let port = clientPort
        let healthy = try await TestCluster.waitUntil(seconds: 20) {
            try await onThread { (try? Self.health(port: port)) ?? false }
        }
        guard healthy else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? ""
            throw EtcdTestFailure("etcd did not become healthy on \(endpoint): \(tail)")
        }
    }

    /// Stops etcd by its PID (SIGTERM, SIGKILL after 10 s) and waits for it to exit.
    func stop() {
        guard let process else { return }
        self.process = nil
        let pid = process.processIdentifier
        if process.isRunning { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// Stops etcd and removes its data.
    func close() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func binary() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates = path.split(separator: ":").map { "\($0)/etcd" } + ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private static func health(port: UInt16) throws -> Bool {
        let answer = try httpExchange(port: port, "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        return answer.contains("\"health\":\"true\"")
    }

    /// POSTs `json` to `path` of the etcd at `port` with a fresh connection and returns
    /// the response body: a test's own view of the registry, beside the client's.
    static func post(port: UInt16, _ path: String, _ json: String) throws -> String {
        let answer = try httpExchange(
            port: port, "POST \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
        guard let start = answer.range(of: "\r\n\r\n")?.upperBound else {
            throw EtcdTestFailure("unreadable answer to \(path): \(answer.prefix(300))")
        }
        return String(answer[start...])
    }

    private static func httpExchange(port: UInt16, _ request: String) throws -> String {
        let socket = try BlockingSocket.connect(port: port)
        defer { socket.close() }
        socket.setReceiveTimeout(seconds: 5)
        try socket.sendText(request)
        return String(decoding: try socket.readToEnd(limit: 1 << 20), as: UTF8.self)
    }
}

struct EtcdTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A loopback HTTP server that answers each request with whatever `respond` returns for its
/// path and body: a stand-in for a broken, hostile or scripted etcd.
final class ScriptedHTTPServer: Sendable {
    enum Reply: Sendable {
        /// These bytes, then close.
        case raw(String)
        /// A `200` with a chunked body of these lines, then the connection stays open until
        /// the client closes it.
        case stream([String])
        /// The same lines, then the connection closes in the middle of the body.
        case streamThenClose([String])
        /// Like `stream`, sent a few bytes at a time (chunks and lines split across reads).
        case dribble([String])
        /// Nothing at all, until the client gives up.
        case silence
    }

    let port: UInt16
    /// Every request's path and body, in arrival order.
    let requests = LockedBox<[(path: String, body: String)]>([])
    private let listener: BlockingSocket

    init(respond: @escaping @Sendable (_ path: String, _ body: String) -> Reply) throws {
        listener = try BlockingSocket.listen()
        port = listener.localPort
        let (listener, requests) = (self.listener, self.requests)
        Thread.detachNewThread {
            while let client = listener.accept() {
                Thread.detachNewThread {
                    guard let (path, body) = Self.readRequest(client) else { return client.close() }
                    requests.withLock { $0.append((path, body)) }
                    Self.send(respond(path, body), to: client)
                }
            }
        }
    }

    func stop() {
        listener.shutdownBoth()
        listener.close()
    }

    private static func readRequest(_ client: BlockingSocket) -> (String, String)? {
        client.setReceiveTimeout(seconds: 10)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                let path = lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                let length = lines.compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first ?? 0
                while bytes.count < end.upperBound + length {
                    guard let n = try? chunk.withUnsafeMutableBytes({ try client.read(into: $0) }), n > 0 else { return nil }
                    bytes += chunk[0..<n]
                }
                return (path, String(decoding: bytes[end.upperBound..<(end.upperBound + length)], as: UTF8.self))
            }
            guard let n = try? chunk.withUnsafeMutableBytes({ try client.read(into: $0) }), n > 0 else { return nil }
            bytes += chunk[0..<n]
        }
    }

    private static func send(_ reply: Reply, to client: BlockingSocket) {
        switch reply {
        case .raw(let text):
            try? client.sendText(text)
        case .stream(let lines), .streamThenClose(let lines), .dribble(let lines):
            var text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            for line in lines {
                let chunk = line + "\n"
                text += String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n"
            }
            if case .dribble = reply {
                let bytes = Array(text.utf8)
                for start in stride(from: 0, to: bytes.count, by: 5) {
                    try? bytes[start..<min(start + 5, bytes.count)].withUnsafeBytes { try client.sendAll($0) }
                    usleep(2_000)
                }
            } else {
                try? client.sendText(text)
            }
            if case .streamThenClose = reply {} else { drain(client) }
        case .silence:
            drain(client)
        }
        client.close()
    }

    /// Blocks until the client closes (or 30 s pass): connections end with their clients.
    private static func drain(_ client: BlockingSocket) {
        client.setReceiveTimeout(seconds: 30)
        var chunk = [UInt8](repeating: 0, count: 1024)
        while let n = try? chunk.withUnsafeMutableBytes({ try client.read(into: $0) }), n > 0 {}
    }
}

extension ScriptedHTTPServer.Reply {
    /// A complete answer (`200` unless told) with `json` as its body.
    static func json(_ json: String, status: String = "200 OK") -> Self {
        .raw("HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
    }
}
