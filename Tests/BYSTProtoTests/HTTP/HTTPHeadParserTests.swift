import NIOCore
import Testing
@testable import BYSTProto

@Suite struct HTTPHeadParserTests {
    static let requestHeads: [HTTPRequestHead] = [
        HTTPRequestHead(method: "POST", target: "/link?id=7&k=a%20b", headers: HTTPHeaders([
            ("Host", "vpn.example:443"), ("Transfer-Encoding", "chunked"), ("User-Agent", "byst/1"),
        ])),
        HTTPRequestHead(method: "GET", target: "/down"),
        HTTPRequestHead(method: "POST", target: "http://vpn.example:8080/up?s=1", version: .http10,
                        headers: HTTPHeaders([("Content-Length", "11"), ("X-Empty", ""), ("X-Utf8", "é ü")])),
        HTTPRequestHead(method: "M-SEARCH", target: "*", headers: HTTPHeaders([("A", "1"), ("a", "2"), ("A", "3")])),
    ]

    static let responseHeads: [HTTPResponseHead] = [
        HTTPResponseHead(status: 200, reason: "OK", headers: HTTPHeaders([("Transfer-Encoding", "chunked")])),
        HTTPResponseHead(status: 204, reason: "No Content"),
        HTTPResponseHead(status: 407, reason: "Proxy Authentication Required", version: .http10,
                         headers: HTTPHeaders([("Proxy-Authenticate", "Basic realm=\"squid\""), ("Content-Length", "0")])),
        HTTPResponseHead(status: 599, reason: ""),
        HTTPResponseHead(status: 101, reason: "Switching\tProtocols", headers: HTTPHeaders([("Upgrade", "byst")])),
    ]

    @Test(arguments: requestHeads)
    func requestRoundTrip(head: HTTPRequestHead) throws {
        var wire = ByteBuffer()
        head.write(into: &wire)
        wire.writeString("next")
        var parser = HTTPHeadParser()
        #expect(try parser.parseRequest(&wire) == head)
        #expect(String(buffer: wire) == "next")
    }

    @Test(arguments: responseHeads)
    func responseRoundTrip(head: HTTPResponseHead) throws {
        var wire = ByteBuffer()
        head.write(into: &wire)
        var parser = HTTPHeadParser()
        #expect(try parser.parseResponse(&wire) == head)
        #expect(wire.readableBytes == 0)
    }

    @Test func writesTheExactWireFormat() {
        var wire = ByteBuffer()
        HTTPRequestHead(method: "POST", target: "/l", headers: HTTPHeaders([("Host", "h"), ("X", "")])).write(into: &wire)
        #expect(String(buffer: wire) == "POST /l HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n")
        wire.clear()
        HTTPResponseHead(status: 200, reason: "", version: .http10).write(into: &wire)
        #expect(String(buffer: wire) == "HTTP/1.0 200 \r\n\r\n")
    }

    @Test(arguments: requestHeads)
    func everySplitAndByteByByteGiveTheSameHead(head: HTTPRequestHead) throws {
        var encoded = ByteBuffer()
        head.write(into: &encoded)
        let wire = Array(encoded.readableBytesView)
        for split in 0...wire.count {
            var parser = HTTPHeadParser()
            var inbound = ByteBuffer(bytes: wire[..<split])
            if split < wire.count {
                #expect(try parser.parseRequest(&inbound) == nil)
                #expect(inbound.readableBytes == split, "nil must consume nothing")
                inbound.writeBytes(wire[split...])
            }
            #expect(try parser.parseRequest(&inbound) == head)
            #expect(inbound.readableBytes == 0)
        }
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer()
        var parsed: [HTTPRequestHead] = []
        for byte in wire {
            inbound.writeInteger(byte)
            if let head = try parser.parseRequest(&inbound) { parsed.append(head) }
        }
        #expect(parsed == [head])
    }

    @Test(arguments: responseHeads)
    func responsesByteByByte(head: HTTPResponseHead) throws {
        var encoded = ByteBuffer()
        head.write(into: &encoded)
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer()
        var parsed: [HTTPResponseHead] = []
        for byte in encoded.readableBytesView {
            inbound.writeInteger(byte)
            if let head = try parser.parseResponse(&inbound) { parsed.append(head) }
        }
        #expect(parsed == [head])
    }

    @Test func lenientButValidForms() throws {
        var parser = HTTPHeadParser()
        // Bare LF line endings, leading empty lines, OWS around values, HTAB inside.
        var wire = ByteBuffer(string: "\r\n\n\r\nGET / HTTP/1.1\nHost:h\nX-A: \t a \tb \t\r\nX-B:\r\n\n")
        let head = try #require(try parser.parseRequest(&wire))
        #expect(head.method == "GET" && head.target == "/" && head.version == .http11)
        #expect(head.headers == HTTPHeaders([("host", "h"), ("x-a", "a \tb"), ("X-B", "")]))
        // Missing SP before an empty reason; a lowercase method is still a token.
        var response = ByteBuffer(string: "HTTP/1.1 200\r\n\r\n")
        #expect(try parser.parseResponse(&response) == HTTPResponseHead(status: 200, reason: ""))
        var lower = ByteBuffer(string: "get /x HTTP/1.0\r\n\r\n")
        #expect(try parser.parseRequest(&lower) == HTTPRequestHead(method: "get", target: "/x", version: .http10))
    }

    @Test func backToBackHeadsReuseTheParser() throws {
        var parser = HTTPHeadParser()
        var wire = ByteBuffer()
        for head in Self.requestHeads { head.write(into: &wire) }
        var parsed: [HTTPRequestHead] = []
        while let head = try parser.parseRequest(&wire) { parsed.append(head) }
        #expect(parsed == Self.requestHeads)
        #expect(wire.readableBytes == 0)
    }

    @Test func headExactlyAtTheLimitParses() throws {
        let limit = HTTPLimits().maxHeadBytes
        let wire = largeHead(length: limit)
        #expect(wire.count == limit)
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer(bytes: wire)
        inbound.writeString("body bytes beyond the limit are not the head's")
        let head = try #require(try parser.parseRequest(&inbound))
        #expect(head.headers.count == 63)
        #expect(String(buffer: inbound) == "body bytes beyond the limit are not the head's")
    }

    @Test func headTooLargeAsSoonAsTheLimitIsBuffered() throws {
        let limit = HTTPLimits().maxHeadBytes
        let wire = largeHead(length: limit + 1)
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer(bytes: wire[..<(limit - 1)])
        #expect(try parser.parseRequest(&inbound) == nil)
        inbound.writeInteger(wire[limit - 1])
        #expect(throws: HTTPError.headTooLarge) { try parser.parseRequest(&inbound) }
        // The error sticks, whatever comes next.
        var fresh = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
        #expect(throws: HTTPError.headTooLarge) { try parser.parseRequest(&fresh) }
    }

    @Test func headTooLargeWithoutAnyLineEnd() throws {
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer(repeating: UInt8(ascii: "A"), count: 1 << 20)
        #expect(throws: HTTPError.headTooLarge) { try parser.parseResponse(&inbound) }
    }

    @Test func leadingEmptyLinesCountTowardTheLimit() throws {
        var limits = HTTPLimits()
        limits.maxHeadBytes = 64
        var parser = HTTPHeadParser(limits: limits)
        var inbound = ByteBuffer(string: String(repeating: "\r\n", count: 24) + "GET / HTTP/1.1\r\n\r\n")
        #expect(inbound.readableBytes == 66)
        #expect(throws: HTTPError.headTooLarge) { try parser.parseRequest(&inbound) }
        var fits = HTTPHeadParser(limits: limits)
        var shorter = ByteBuffer(string: String(repeating: "\r\n", count: 23) + "GET / HTTP/1.1\r\n\r\n")
        #expect(try fits.parseRequest(&shorter)?.target == "/")
    }

    @Test func headerCountLimit() throws {
        var limits = HTTPLimits()
        limits.maxHeaders = 3
        let three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        var parser = HTTPHeadParser(limits: limits)
        var wire = ByteBuffer(string: three)
        #expect(try parser.parseRequest(&wire)?.headers.count == 3)
        var four = ByteBuffer(string: "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n")
        #expect(throws: HTTPError.tooManyHeaders) { try parser.parseRequest(&four) }

        let defaultLimit = HTTPLimits().maxHeaders
        var fields = (0..<defaultLimit).map { "F\($0): v\r\n" }.joined()
        var atLimit = HTTPHeadParser()
        var ok = ByteBuffer(string: "GET / HTTP/1.1\r\n" + fields + "\r\n")
        #expect(try atLimit.parseRequest(&ok)?.headers.count == defaultLimit)
        fields += "One: more\r\n"
        var over = ByteBuffer(string: "GET / HTTP/1.1\r\n" + fields + "\r\n")
        #expect(throws: HTTPError.tooManyHeaders) { try atLimit.parseRequest(&over) }
    }

    @Test func sixteenKiBHeadFedByteByByte() throws {
        let wire = largeHead(length: HTTPLimits().maxHeadBytes)
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer()
        var heads = 0
        for byte in wire {
            inbound.writeInteger(byte)
            if try parser.parseRequest(&inbound) != nil { heads += 1 }
        }
        #expect(heads == 1)
        #expect(inbound.readableBytes == 0)
    }

    /// 64 maximal heads, 1 MiB in all, one byte per call: linear only if each call scans
    /// just the new byte (a rescanning parser would examine ~8 GiB here).
    @Test func oneMebibyteOfSingleBytes() throws {
        let wire = largeHead(length: HTTPLimits().maxHeadBytes)
        var parser = HTTPHeadParser()
        var inbound = ByteBuffer()
        var heads = 0
        for _ in 0..<64 {
            for byte in wire {
                inbound.writeInteger(byte)
                if try parser.parseRequest(&inbound) != nil { heads += 1 }
            }
            inbound.discardReadBytes()
        }
        #expect(heads == 64)
    }

    @Test func requestAndResponseParsingDoNotShareProgress() throws {
        var parser = HTTPHeadParser()
        var request = ByteBuffer(string: "GET / HTTP/1.1\r\nHo")
        var response = ByteBuffer(string: "HTTP/1.1 200 OK\r\n")
        #expect(try parser.parseRequest(&request) == nil)
        #expect(try parser.parseResponse(&response) == nil)
        request.writeString("st: h\r\n\r\n")
        response.writeString("\r\n")
        #expect(try parser.parseRequest(&request)?.headers["host"] == "h")
        #expect(try parser.parseResponse(&response)?.status == 200)
    }
}

/// A request head of exactly `length` bytes (at least 22 + 63 × 10): a request line and
/// 63 fields padded with "a"s.
func largeHead(length: Int) -> [UInt8] {
    let requestLine = "GET /fill HTTP/1.1\r\n"
    let fieldCount = 63
    var remaining = length - requestLine.utf8.count - 2 - fieldCount * "X-Fill: \r\n".utf8.count
    precondition(remaining >= 0)
    var text = requestLine
    for index in 0..<fieldCount {
        let value = index == fieldCount - 1 ? remaining : min(remaining, remaining / (fieldCount - index))
        remaining -= value
        text += "X-Fill: " + String(repeating: "a", count: value) + "\r\n"
    }
    return bytes(text + "\r\n")
}
