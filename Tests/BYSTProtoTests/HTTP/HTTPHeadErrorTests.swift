import NIOCore
import Testing
@testable import BYSTProto

/// Every way a head is refused, with its exact error, whole and drip-fed.
@Suite struct HTTPHeadErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var wire: String
        var error: HTTPError
        init(_ wire: String, _ error: HTTPError) {
            self.wire = wire
            self.error = error
        }
        var testDescription: String { "\(wire.debugDescription) → \(error)" }
    }

    static let requestCases: [Case] = [
        // obs-fold, on a later field and on the first one.
        Case("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", .malformedHead("obs-fold")),
        Case("GET / HTTP/1.1\r\n\tX: 1\r\n\r\n", .malformedHead("obs-fold")),
        // Whitespace between name and colon.
        Case("GET / HTTP/1.1\r\nHost : h\r\n\r\n", .malformedHead("whitespace before colon")),
        Case("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", .malformedHead("whitespace before colon")),
        // Names that are not tokens.
        Case("GET / HTTP/1.1\r\nX(Y): 1\r\n\r\n", .malformedHead("field name")),
        Case("GET / HTTP/1.1\r\n: v\r\n\r\n", .malformedHead("field name")),
        Case("GET / HTTP/1.1\r\nX Y: 1\r\n\r\n", .malformedHead("field name")),
        Case("GET / HTTP/1.1\r\nNäme: 1\r\n\r\n", .malformedHead("field name")),
        Case("GET / HTTP/1.1\r\nNoColon\r\n\r\n", .malformedHead("field without colon")),
        Case("GET / HTTP/1.1\r\n\r\r\n\r\n", .malformedHead("field without colon")),
        // CTL bytes in values (HTAB is allowed, see the parser tests).
        Case("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", .malformedHead("control byte in field value")),
        Case("GET / HTTP/1.1\r\nX: a\u{7F}\r\n\r\n", .malformedHead("control byte in field value")),
        Case("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", .malformedHead("control byte in field value")),
        Case("GET / HTTP/1.1\r\nX: \u{1B}[31m\r\n\r\n", .malformedHead("control byte in field value")),
        Case("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", .malformedHead("control byte in field value")),
        // Request lines.
        Case("GET /\r\n\r\n", .malformedHead("request line")),
        Case("GET\r\n\r\n", .malformedHead("request line")),
        Case("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\n\n", .malformedHead("request line")),
        Case("G@T / HTTP/1.1\r\n\r\n", .malformedHead("method")),
        Case(" GET / HTTP/1.1\r\n\r\n", .malformedHead("method")),
        Case("GET / http/1.1\r\n\r\n", .malformedHead("version")),
        Case("GET / HTTP/1.1x\r\n\r\n", .malformedHead("version")),
        Case("GET / HTTP/1\r\n\r\n", .malformedHead("version")),
        Case("GET / HTTP/a.b\r\n\r\n", .malformedHead("version")),
        Case("GET / HTTP/1.1 \r\n\r\n", .malformedHead("version")),
        Case("GET / HTTP/2.0\r\n\r\n", .unsupportedVersion),
        Case("GET / HTTP/1.2\r\n\r\n", .unsupportedVersion),
        Case("GET / HTTP/0.9\r\n\r\n", .unsupportedVersion),
        Case("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .unsupportedVersion),
        // Targets with SP or CTL.
        Case("GET  / HTTP/1.1\r\n\r\n", .badTarget),
        Case("GET /a b HTTP/1.1\r\n\r\n", .badTarget),
        Case("GET /a\u{1}b HTTP/1.1\r\n\r\n", .badTarget),
        Case("GET /a\u{7F} HTTP/1.1\r\n\r\n", .badTarget),
        Case("GET /a\rb HTTP/1.1\r\n\r\n", .badTarget),
    ]

    static let responseCases: [Case] = [
        Case("HTTP/1.1\r\n\r\n", .malformedHead("status line")),
        Case("HTTP/1.1 20 OK\r\n\r\n", .malformedHead("status code")),
        Case("HTTP/1.1 2000 OK\r\n\r\n", .malformedHead("status code")),
        Case("HTTP/1.1 200OK\r\n\r\n", .malformedHead("status code")),
        Case("HTTP/1.1 abc OK\r\n\r\n", .malformedHead("status code")),
        Case("HTTP/1.1 099 Low\r\n\r\n", .malformedHead("status code")),
        Case("HTTP/1.1  200 OK\r\n\r\n", .malformedHead("status code")),
        Case("HTTP/1.1 200 O\u{1}K\r\n\r\n", .malformedHead("reason phrase")),
        Case("HTTP/2 200 OK\r\n\r\n", .malformedHead("version")),
        Case("ICY 200 OK\r\n\r\n", .malformedHead("version")),
        Case("HTTP/2.0 200 OK\r\n\r\n", .unsupportedVersion),
        Case("HTTP/1.9 200 OK\r\n\r\n", .unsupportedVersion),
        Case("\r\nHTTP/1.1 200 OK\r\n\r\n", .malformedHead("empty line before status line")),
        Case("HTTP/1.1 200 OK\r\nVia : 1.1 squid\r\n\r\n", .malformedHead("whitespace before colon")),
        Case("HTTP/1.1 200 OK\r\nA: 1\r\n  2\r\n\r\n", .malformedHead("obs-fold")),
    ]

    @Test(arguments: requestCases)
    func requestErrors(_ c: Case) {
        #expect(requestError(bytes(c.wire), dripFed: false) == c.error)
        #expect(requestError(bytes(c.wire), dripFed: true) == c.error)
    }

    @Test(arguments: responseCases)
    func responseErrors(_ c: Case) {
        #expect(responseError(bytes(c.wire), dripFed: false) == c.error)
        #expect(responseError(bytes(c.wire), dripFed: true) == c.error)
    }

    @Test func statusCodes() {
        #expect(HTTPError.headTooLarge.status == 431)
        #expect(HTTPError.tooManyHeaders.status == 431)
        #expect(HTTPError.unsupportedVersion.status == 505)
        #expect(HTTPError.unsupportedTransferEncoding.status == 501)
        let others: [HTTPError] = [.malformedHead("x"), .badTarget, .conflictingLength, .badContentLength, .badChunkSize,
                                   .chunkLineTooLong, .badChunkTerminator, .trailersTooLarge, .truncatedBody]
        #expect(others.allSatisfy { $0.status == 400 })
        #expect(HTTPError.malformedHead("obs-fold").description == "malformed HTTP head: obs-fold")
    }

    /// Bytes from a fixed seed, in many sizes: the parser throws or waits, never traps.
    @Test func randomBytesNeverTrap() {
        var generator = SplitMix64(seed: 0xB757)
        let alphabet = bytes("GET / HTTP/1.1\r\n:; \t\u{0}\u{7F}ÿaZ0")
        for _ in 0..<2000 {
            let count = Int.random(in: 0...200, using: &generator)
            let wire = (0..<count).map { _ in
                Bool.random(using: &generator) ? UInt8.random(in: 0...255, using: &generator)
                    : alphabet.randomElement(using: &generator) ?? 0
            }
            _ = requestError(wire, dripFed: false)
            _ = responseError(wire, dripFed: false)
        }
    }

    func requestError(_ wire: [UInt8], dripFed: Bool) -> HTTPError? {
        firstError(wire, dripFed: dripFed) { parser, input throws(HTTPError) in try parser.parseRequest(&input) != nil }
    }

    func responseError(_ wire: [UInt8], dripFed: Bool) -> HTTPError? {
        firstError(wire, dripFed: dripFed) { parser, input throws(HTTPError) in try parser.parseResponse(&input) != nil }
    }

    /// Feeds `wire` whole or byte by byte; the first error thrown, or nil if none.
    func firstError(
        _ wire: [UInt8], dripFed: Bool,
        _ parse: (inout HTTPHeadParser, inout ByteBuffer) throws(HTTPError) -> Bool
    ) -> HTTPError? {
        var parser = HTTPHeadParser()
        var input = ByteBuffer()
        do throws(HTTPError) {
            for piece in pieces(wire, sizes: [dripFed ? 1 : wire.count]) {
                input.writeBytes(piece)
                while try parse(&parser, &input) {}
            }
        } catch {
            return error
        }
        return nil
    }
}
