import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// A hub's answer to a split-mode POST whose part number comes again (PROTOCOL.md §6.3): the
/// client sends its unanswered parts (at most the last four) again when their connection was
/// lost before the answer. The same bytes are answered again without reaching the link twice;
/// other bytes get 409.
@Suite(.serialized) struct SplitRepeatedPartTests {
    let capture = LogCapture()

    func hubConfig(_ dir: String, httpPort: UInt16) -> String {
        """
        [node]
        name = "hub"
        http_listen = ["127.0.0.1:\(httpPort)"]
        \(TestCluster.nodeFiles("hub", dir: dir))

        [[peer]]
        name = "branch"
        key = "branch"
        """
    }

    static func token() -> String { Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) }) }

    /// One POST on its own connection; the hub's status line.
    static func post(port: UInt16, _ token: String, _ sequence: Int, _ body: String) throws -> String {
        let socket = try BlockingSocket.connect(port: port)
        defer { socket.close() }
        socket.setReceiveTimeout(seconds: 5)
        try socket.sendText("POST /byst?t=\(token)&s=\(sequence) HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let answer = String(decoding: (try? socket.readToEnd(limit: 4096)) ?? [], as: UTF8.self)
        return answer.components(separatedBy: "\r\n").first ?? ""
    }

    /// A split GET: the hub starts a link on it, which waits for handshake message 1 (its
    /// first bytes are the magic "BYST", checked one by one as they come).
    static func downstream(port: UInt16, _ token: String) throws -> BlockingSocket {
        let socket = try BlockingSocket.connect(port: port)
        try socket.sendText("GET /byst?t=\(token) HTTP/1.1\r\nHost: hub\r\n\r\n")
        return socket
    }

    @Test func theLastPartSentAgainIsAnsweredAgainWithTheSameBytesOnly() async throws {
        let dir = try TestCluster.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try TestCluster.pairedKeyStores(dir)
        let port = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(hubConfig(dir, httpPort: port), directory: dir, name: "hub", keys: keys.hub,
                                              capture: capture)
        let (repeated, control) = (Self.token(), Self.token())
        let outcome = try await onThread { () throws -> (statuses: [String], repeated: (Int, Bool), control: (String, Bool)) in
            let repeatedGet = try Self.downstream(port: port, repeated)
            let controlGet = try Self.downstream(port: port, control)
            defer {
                repeatedGet.close()
                controlGet.close()
            }
            Thread.sleep(forTimeInterval: 0.2)
            let statuses = try [
                Self.post(port: port, repeated, 0, "BY"),
                Self.post(port: port, repeated, 0, "BY"),   // same bytes: answered, not delivered
                Self.post(port: port, repeated, 0, "BX"),   // other bytes
                Self.post(port: port, repeated, 0, "BYS"),  // other length
                Self.post(port: port, repeated, 1, "ST"),
                Self.post(port: port, repeated, 1, "ST"),
                Self.post(port: port, repeated, 0, "BY"),   // still one of the last four parts
                Self.post(port: port, repeated, 0, "BZ"),
                Self.post(port: port, repeated, 3, "x"),    // ahead
                // The control link gets "BY" twice as two parts: "BYBY" is not the magic.
                Self.post(port: port, control, 0, "BY"),
                Self.post(port: port, control, 1, "BY"),
            ]
            let repeatedAnswer = repeatedGet.drain(until: .now + .seconds(1))
            let controlAnswer = controlGet.drain(until: .now + .seconds(5))
            return (statuses, (repeatedAnswer.bytes.count, repeatedAnswer.closed),
                    (String(decoding: controlAnswer.bytes.prefix(12), as: UTF8.self), controlAnswer.closed))
        }
        #expect(outcome.statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 409 Conflict", "HTTP/1.1 409 Conflict",
                                     "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 409 Conflict",
                                     "HTTP/1.1 409 Conflict",
                                     "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
        // The link saw "BYST" once: it still waits for the rest of message 1.
        #expect(outcome.repeated.0 == 0 && !outcome.repeated.1, "the repeated link was answered or closed: a part was delivered twice")
        // What a second delivery does: the link refuses the bad magic and its GET gets 403.
        #expect(outcome.control.0 == "HTTP/1.1 403" && outcome.control.1, "control: \(outcome.control)")
        #expect(capture.contains("sent again with other bytes"))
        try await hub.node.shutdown()
    }
}
