import NIOCore
import Testing
@testable import BYSTProto

/// Whole connections: heads and bodies back to back, split every way a network can.
@Suite struct HTTPMessageStreamTests {
    typealias Request = MessageReader<HTTPRequestHead>.Message
    typealias Response = MessageReader<HTTPResponseHead>.Message

    /// Requests as BYST and the proxies in front of it send them: a chunked POST link, a
    /// split-mode GET, bounded POSTs with Content-Length (nginx's HTTP/1.0 one included).
    static func requestStream() -> (wire: [UInt8], messages: [Request]) {
        var wire: [UInt8] = []
        var messages: [Request] = []
        func add(_ head: HTTPRequestHead, body: [UInt8], encoded: [UInt8]? = nil) {
            var buffer = ByteBuffer()
            head.write(into: &buffer)
            wire += buffer.readableBytesView
            wire += encoded ?? body
            messages.append(Request(head: head, body: body))
        }
        let linkBody = pattern(300, seed: 1)
        add(HTTPRequestHead(method: "POST", target: "/link?id=7", headers: HTTPHeaders([
            ("Host", "vpn.example"), ("Transfer-Encoding", "chunked"),
        ])), body: linkBody, encoded: chunked(linkBody, sizes: [1, 100, 17], trailer: "X-Check: 1"))
        add(HTTPRequestHead(method: "GET", target: "/down?s=abc", headers: HTTPHeaders([("Host", "h")])), body: [])
        add(HTTPRequestHead(method: "POST", target: "/up?s=abc&n=1", headers: HTTPHeaders([
            ("Host", "h"), ("Content-Length", "11"),
        ])), body: bytes("hello world"))
        add(HTTPRequestHead(method: "POST", target: "/up?s=abc&n=2", headers: HTTPHeaders([
            ("Host", "h"), ("Content-Length", "0"),
        ])), body: [])
        add(HTTPRequestHead(method: "POST", target: "/up?s=abc&n=3", version: .http10, headers: HTTPHeaders([
            ("Host", "h"), ("Connection", "close"), ("Content-Length", "64"),
        ])), body: pattern(64, seed: 5))
        // Hand-written: an empty line before the request line, bare LF endings.
        wire += bytes("\r\nPOST /up HTTP/1.1\nContent-Length: 3\n\nabc")
        messages.append(Request(head: HTTPRequestHead(method: "POST", target: "/up", headers: HTTPHeaders([
            ("Content-Length", "3"),
        ])), body: bytes("abc")))
        return (wire, messages)
    }

    /// Responses to [POST, POST, HEAD, GET, GET, POST, GET]: an interim 100, a chunked
    /// link answer, a HEAD answer, 204, 304, a Content-Length body, and an HTTP/1.0 answer
    /// delimited by the close.
    static let responseMethods = ["POST", "POST", "HEAD", "GET", "GET", "POST", "GET"]

    static func responseStream() -> (wire: [UInt8], messages: [Response]) {
        var wire: [UInt8] = []
        var messages: [Response] = []
        func add(_ head: HTTPResponseHead, body: [UInt8] = [], encoded: [UInt8]? = nil) {
            var buffer = ByteBuffer()
            head.write(into: &buffer)
            wire += buffer.readableBytesView
            wire += encoded ?? body
            messages.append(Response(head: head, body: body))
        }
        let linkBody = pattern(500, seed: 2)
        add(HTTPResponseHead(status: 100, reason: "Continue"))
        add(HTTPResponseHead(status: 200, reason: "OK", headers: HTTPHeaders([("Transfer-Encoding", "chunked")])),
            body: linkBody, encoded: chunked(linkBody, sizes: [250, 3]))
        add(HTTPResponseHead(status: 200, reason: "OK", headers: HTTPHeaders([("Content-Length", "1000")])))
        add(HTTPResponseHead(status: 204, reason: "No Content"))
        add(HTTPResponseHead(status: 304, reason: "Not Modified", headers: HTTPHeaders([("Content-Length", "50")])))
        add(HTTPResponseHead(status: 200, reason: "OK", headers: HTTPHeaders([("Content-Length", "5")])), body: bytes("abcde"))
        add(HTTPResponseHead(status: 200, reason: "OK", version: .http10, headers: HTTPHeaders([("Via", "1.0 squid")])),
            body: pattern(200, seed: 3))
        return (wire, messages)
    }

    func readRequests(_ pieces: [ArraySlice<UInt8>]) throws -> [Request] {
        var reader = MessageReader<HTTPRequestHead>.requests()
        for piece in pieces { try reader.feed(piece) }
        try reader.finish()
        #expect(reader.pending == nil)
        return reader.messages
    }

    func readResponses(_ pieces: [ArraySlice<UInt8>]) throws -> [Response] {
        var reader = MessageReader<HTTPResponseHead>.responses(methods: Self.responseMethods)
        for piece in pieces { try reader.feed(piece) }
        try reader.finish()
        #expect(reader.pending == nil)
        return reader.messages
    }

    @Test func requestsWholeByteByByteAndAtEverySplit() throws {
        let (wire, expected) = Self.requestStream()
        #expect(try readRequests([wire[...]]) == expected)
        #expect(try readRequests(pieces(wire, sizes: [1])) == expected)
        for split in 1..<wire.count {
            #expect(try readRequests([wire[..<split], wire[split...]]) == expected, "split at \(split)")
        }
    }

    @Test func responsesWholeByteByByteAndAtEverySplit() throws {
        let (wire, expected) = Self.responseStream()
        #expect(try readResponses([wire[...]]) == expected)
        #expect(try readResponses(pieces(wire, sizes: [1])) == expected)
        for split in 1..<wire.count {
            #expect(try readResponses([wire[..<split], wire[split...]]) == expected, "split at \(split)")
        }
    }

    @Test func randomSplits() throws {
        var generator = SplitMix64(seed: 7)
        let requests = Self.requestStream()
        let responses = Self.responseStream()
        for _ in 0..<50 {
            let sizes = (0..<8).map { _ in Int.random(in: 1...200, using: &generator) }
            #expect(try readRequests(pieces(requests.wire, sizes: sizes)) == requests.messages)
            #expect(try readResponses(pieces(responses.wire, sizes: sizes)) == responses.messages)
        }
    }

    @Test func coalescedPostsWithContentLength() throws {
        var input = ByteBuffer(string: "POST /up?n=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nfirst"
                                   + "POST /up?n=2 HTTP/1.1\r\nContent-Length: 6\r\n\r\nsecond")
        var parser = HTTPHeadParser()
        let first = try #require(try parser.parseRequest(&input))
        var decoder = HTTPBodyDecoder(framing: try .request(first))
        #expect(try decoder.next(&input) == .data(ByteBuffer(string: "first")))
        #expect(try decoder.next(&input) == .end)
        let second = try #require(try parser.parseRequest(&input))
        #expect(second.target == "/up?n=2")
        decoder = HTTPBodyDecoder(framing: try .request(second))
        #expect(try decoder.next(&input) == .data(ByteBuffer(string: "second")))
        #expect(try decoder.next(&input) == .end)
        #expect(input.readableBytes == 0)
        try decoder.endOfInput()
    }

    @Test func closeDelimitedResponseThenEOF() throws {
        var reader = MessageReader<HTTPResponseHead>.responses(methods: ["GET"])
        try reader.feed(bytes("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nstream of bytes"))
        #expect(reader.messages.isEmpty)
        try reader.feed(bytes(" and more"))
        try reader.finish()
        #expect(reader.messages.map(\.body) == [bytes("stream of bytes and more")])
    }

    @Test func chunkedResponseCutShort() throws {
        var reader = MessageReader<HTTPResponseHead>.responses(methods: ["POST"])
        try reader.feed(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly eight"))
        #expect(throws: HTTPError.truncatedBody) { try reader.finish() }
    }
}
