import Testing
@testable import BYSTProto

@Suite struct HTTPBodyFramingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var fields: [(String, String)]
        var version: HTTPVersion
        var expected: Result<HTTPBodyFraming, HTTPError>
        init(_ fields: [(String, String)], _ version: HTTPVersion, _ expected: Result<HTTPBodyFraming, HTTPError>) {
            self.fields = fields
            self.version = version
            self.expected = expected
        }
        init(_ fields: [(String, String)], _ expected: Result<HTTPBodyFraming, HTTPError>) {
            self.init(fields, .http11, expected)
        }
        var testDescription: String { "\(version) \(fields) → \(expected)" }
    }

    static let requestCases: [Case] = [
        Case([], .success(.none)),
        Case([("Host", "h")], .http10, .success(.none)),
        Case([("Transfer-Encoding", "chunked")], .success(.chunked)),
        Case([("transfer-encoding", "Chunked")], .success(.chunked)),
        Case([("Transfer-Encoding", "chunked, ")], .success(.chunked)),
        Case([("Transfer-Encoding", ""), ("Transfer-Encoding", "chunked")], .success(.chunked)),
        Case([("Content-Length", "11")], .success(.contentLength(11))),
        Case([("Content-Length", "0")], .success(.contentLength(0))),
        Case([("Content-Length", "007")], .success(.contentLength(7))),
        Case([("Content-Length", "5, 5")], .success(.contentLength(5))),
        Case([("Content-Length", "5"), ("content-length", "5")], .success(.contentLength(5))),
        Case([("Content-Length", "9007199254740992")], .success(.contentLength(1 << 53))),
        Case([("Content-Length", "3")], .http10, .success(.contentLength(3))),
        // Smuggling defence: both framings → refused, in either order, even on HTTP/1.0.
        Case([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], .failure(.conflictingLength)),
        Case([("Content-Length", "0"), ("Transfer-Encoding", "chunked")], .failure(.conflictingLength)),
        Case([("Content-Length", "5"), ("Transfer-Encoding", "gzip")], .http10, .failure(.conflictingLength)),
        // Codings other than a single final chunked.
        Case([("Transfer-Encoding", "gzip")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "identity")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "gzip, chunked")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "chunked, gzip")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "chunked;q=1")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "chunkedx")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "")], .failure(.unsupportedTransferEncoding)),
        Case([("Transfer-Encoding", "chunked")], .http10, .failure(.unsupportedTransferEncoding)),
        // Content-Length that is not 1*DIGIT ≤ 2^53, or that disagrees.
        Case([("Content-Length", "")], .failure(.badContentLength)),
        Case([("Content-Length", "abc")], .failure(.badContentLength)),
        Case([("Content-Length", "-1")], .failure(.badContentLength)),
        Case([("Content-Length", "+5")], .failure(.badContentLength)),
        Case([("Content-Length", "1.0")], .failure(.badContentLength)),
        Case([("Content-Length", "0x10")], .failure(.badContentLength)),
        Case([("Content-Length", "1 2")], .failure(.badContentLength)),
        Case([("Content-Length", "5,")], .failure(.badContentLength)),
        Case([("Content-Length", "5, 6")], .failure(.badContentLength)),
        Case([("Content-Length", "5"), ("Content-Length", "6")], .failure(.badContentLength)),
        Case([("Content-Length", "9007199254740993")], .failure(.badContentLength)),
        Case([("Content-Length", "99999999999999999999999999")], .failure(.badContentLength)),
        Case([("Content-Length", "٣")], .failure(.badContentLength)),
    ]

    @Test(arguments: requestCases)
    func requestFraming(_ c: Case) {
        let head = HTTPRequestHead(method: "POST", target: "/", version: c.version, headers: HTTPHeaders(c.fields))
        #expect(Result { () throws(HTTPError) in try HTTPBodyFraming.request(head) } == c.expected)
    }

    @Test(arguments: requestCases)
    func responseFramingSharesTheRules(_ c: Case) {
        let head = HTTPResponseHead(status: 200, reason: "OK", version: c.version, headers: HTTPHeaders(c.fields))
        let expected = c.expected.map { $0 == .none ? .untilClose : $0 }
        #expect(Result { () throws(HTTPError) in try HTTPBodyFraming.response(head, requestMethod: "POST") } == expected)
    }

    @Test func responsesWithoutBodies() throws {
        let length = HTTPHeaders([("Content-Length", "1000")])
        let chunked = HTTPHeaders([("Transfer-Encoding", "chunked")])
        func framing(_ status: Int, _ method: String, _ headers: HTTPHeaders = .init(),
                     _ version: HTTPVersion = .http11) throws -> HTTPBodyFraming {
            try HTTPBodyFraming.response(HTTPResponseHead(status: status, reason: "", version: version, headers: headers),
                                         requestMethod: method)
        }
        #expect(try framing(200, "HEAD", length) == .none)
        #expect(try framing(200, "HEAD", chunked) == .none)
        #expect(try framing(100, "POST") == .none)
        #expect(try framing(101, "GET", length) == .none)
        #expect(try framing(204, "POST", length) == .none)
        #expect(try framing(304, "GET", length) == .none)
        #expect(try framing(200, "CONNECT", length) == .none)
        #expect(try framing(407, "CONNECT", length) == .contentLength(1000))
        #expect(try framing(200, "GET", chunked) == .chunked)
        #expect(try framing(200, "GET") == .untilClose)
        #expect(try framing(200, "GET", .init(), .http10) == .untilClose)
        #expect(try framing(404, "POST", HTTPHeaders([("Content-Length", "0")])) == .contentLength(0))
        // The smuggling defence holds for responses too.
        #expect(throws: HTTPError.conflictingLength) {
            try framing(200, "GET", HTTPHeaders([("Transfer-Encoding", "chunked"), ("Content-Length", "1")]))
        }
    }
}
