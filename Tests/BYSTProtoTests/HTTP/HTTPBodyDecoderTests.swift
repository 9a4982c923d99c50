import NIOCore
import Testing
@testable import BYSTProto

@Suite struct HTTPBodyDecoderTests {
    struct Decoded: Equatable {
        var body: [UInt8]
        /// Bytes left in the buffer after `.end` (the next message's).
        var rest: [UInt8]
    }

    /// Feeds `wire` in pieces of the given sizes and collects the body until `.end`.
    func decode(_ framing: HTTPBodyFraming, _ wire: [UInt8], sizes: [Int] = [Int.max],
                limits: HTTPLimits = .init()) -> Result<Decoded, HTTPError> {
        var decoder = HTTPBodyDecoder(framing: framing, limits: limits)
        var input = ByteBuffer()
        var body: [UInt8] = []
        var ended = false
        do throws(HTTPError) {
            for piece in pieces(wire, sizes: sizes) + [[]] {
                input.writeBytes(piece)
                while !ended, let part = try decoder.next(&input) {
                    switch part {
                    case .data(let data): body += data.readableBytesView
                    case .end: ended = true
                    }
                }
            }
            try decoder.endOfInput()
            while !ended, let part = try decoder.next(&input) {
                if case .end = part { ended = true }
            }
        } catch {
            return .failure(error)
        }
        #expect(ended && decoder.isComplete)
        return .success(Decoded(body: body, rest: Array(input.readableBytesView)))
    }

    @Test func chunkedBodyWithExtensionsTrailersAndBareLF() {
        let wire = bytes("5;name=value;x\r\nhello\r\n1 ; ext\r\n \r\nA\r\n0123456789\r\n0;last\r\n"
                         + "X-Trailer: 1\r\nX-Other: 2\r\n\r\nNEXT")
        let expected = Decoded(body: bytes("hello 0123456789"), rest: bytes("NEXT"))
        #expect(decode(.chunked, wire) == .success(expected))
        #expect(decode(.chunked, wire, sizes: [1]) == .success(expected))
        let bare = bytes("5\nhello\n3\nabc\n0\n\nNEXT")
        #expect(decode(.chunked, bare, sizes: [1]) == .success(Decoded(body: bytes("helloabc"), rest: bytes("NEXT"))))
        let upper = bytes("1F\r\n" + String(repeating: "x", count: 31) + "\r\n0\r\n\r\n")
        #expect(decode(.chunked, upper) == .success(Decoded(body: Array(repeating: UInt8(ascii: "x"), count: 31), rest: [])))
    }

    @Test func fifteenHexDigitsFit() throws {
        var decoder = HTTPBodyDecoder(framing: .chunked)
        var input = ByteBuffer(string: "fffffffffffffff\r\nabc")
        #expect(try decoder.next(&input) == .data(ByteBuffer(string: "abc")))
        #expect(try decoder.next(&input) == nil)
        #expect(throws: HTTPError.truncatedBody) { try decoder.endOfInput() }
    }

    @Test func bodyRechunkedAtRandomDecodesToTheSameBytes() {
        var generator = SplitMix64(seed: 42)
        let body = pattern(50_000, seed: 9)
        for _ in 0..<40 {
            let chunkSizes = (0..<16).map { _ in Int.random(in: 1...4000, using: &generator) }
            let readSizes = (0..<16).map { _ in Int.random(in: 1...3000, using: &generator) }
            let wire = chunked(body, sizes: chunkSizes, trailer: Bool.random(using: &generator) ? "Via: x" : "")
            #expect(decode(.chunked, wire, sizes: readSizes) == .success(Decoded(body: body, rest: [])))
        }
        // Proxies that re-frame a body as Content-Length or close-delimited give the same bytes.
        #expect(decode(.contentLength(body.count), body, sizes: [1, 700, 3]) == .success(Decoded(body: body, rest: [])))
        #expect(decode(.untilClose, body, sizes: [1000]) == .success(Decoded(body: body, rest: [])))
    }

    @Test func everySplitOfAChunkedBody() {
        let body = pattern(40, seed: 3)
        let wire = chunked(body, sizes: [1, 16, 7], trailer: "T: 1") + bytes("GET")
        for split in 0...wire.count {
            #expect(decode(.chunked, wire, sizes: [max(split, 1), wire.count]) == .success(Decoded(body: body, rest: bytes("GET"))))
        }
    }

    @Test func dataPartsAreSlicesOfTheInput() throws {
        var decoder = HTTPBodyDecoder(framing: .chunked)
        var input = ByteBuffer(string: "4\r\nabcd\r\n0\r\n\r\n")
        let base = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        guard case .data(let data) = try decoder.next(&input) else {
            Issue.record("expected data")
            return
        }
        #expect(data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == base + 3)
        #expect(try decoder.next(&input) == .end)
    }

    @Test func contentLengthStopsAtItsLength() throws {
        var decoder = HTTPBodyDecoder(framing: .contentLength(5))
        var input = ByteBuffer(string: "abc")
        #expect(try decoder.next(&input) == .data(ByteBuffer(string: "abc")))
        #expect(try decoder.next(&input) == nil)
        #expect(!decoder.isComplete)
        input.writeString("deNEXT")
        #expect(try decoder.next(&input) == .data(ByteBuffer(string: "de")))
        #expect(decoder.isComplete)
        #expect(try decoder.next(&input) == .end)
        #expect(try decoder.next(&input) == .end)
        #expect(String(buffer: input) == "NEXT")
        try decoder.endOfInput()
    }

    @Test func noBodyAndZeroLengthEndAtOnce() throws {
        for framing in [HTTPBodyFraming.none, .contentLength(0)] {
            var decoder = HTTPBodyDecoder(framing: framing)
            #expect(decoder.isComplete)
            var input = ByteBuffer(string: "NEXT")
            #expect(try decoder.next(&input) == .end)
            #expect(input.readableBytes == 4)
            try decoder.endOfInput()
        }
    }

    @Test func closeDelimitedBodyEndsAtEOF() throws {
        var decoder = HTTPBodyDecoder(framing: .untilClose)
        var input = ByteBuffer(string: "all of it")
        #expect(try decoder.next(&input) == .data(ByteBuffer(string: "all of it")))
        #expect(try decoder.next(&input) == nil)
        #expect(!decoder.isComplete)
        try decoder.endOfInput()
        #expect(decoder.isComplete)
        #expect(try decoder.next(&input) == .end)
        try decoder.endOfInput()
    }

    @Test func truncatedBodies() {
        let wire = chunked(pattern(100), sizes: [30], trailer: "X: y")
        for cut in 0..<wire.count {
            #expect(decode(.chunked, Array(wire[..<cut])) == .failure(.truncatedBody), "cut at \(cut)")
        }
        #expect(decode(.contentLength(10), pattern(9)) == .failure(.truncatedBody))
        #expect(decode(.contentLength(10), []) == .failure(.truncatedBody))
    }

    @Test func errorsStick() throws {
        var decoder = HTTPBodyDecoder(framing: .chunked)
        var input = ByteBuffer(string: "zz\r\n")
        #expect(throws: HTTPError.badChunkSize) { try decoder.next(&input) }
        var good = ByteBuffer(string: "0\r\n\r\n")
        #expect(throws: HTTPError.badChunkSize) { try decoder.next(&good) }
        #expect(throws: HTTPError.badChunkSize) { try decoder.endOfInput() }

        var truncated = HTTPBodyDecoder(framing: .contentLength(1))
        #expect(throws: HTTPError.truncatedBody) { try truncated.endOfInput() }
        #expect(throws: HTTPError.truncatedBody) { try truncated.next(&good) }
    }

    struct ChunkCase: Sendable, CustomTestStringConvertible {
        var wire: String
        var error: HTTPError
        init(_ wire: String, _ error: HTTPError) {
            self.wire = wire
            self.error = error
        }
        var testDescription: String { "\(wire.prefix(40).debugDescription) → \(error)" }
    }

    static let chunkErrors: [ChunkCase] = [
        ChunkCase("-1\r\n", .badChunkSize),
        ChunkCase("0x10\r\n", .badChunkSize),
        ChunkCase("\r\n", .badChunkSize),
        ChunkCase("\n", .badChunkSize),
        ChunkCase(" 5\r\n", .badChunkSize),
        ChunkCase("zz\r\n", .badChunkSize),
        ChunkCase("5z\r\n", .badChunkSize),
        ChunkCase(";ext\r\n", .badChunkSize),
        ChunkCase("5 \r\n", .badChunkSize),
        ChunkCase("5 x\r\n", .badChunkSize),
        ChunkCase("5\rX", .badChunkSize),
        ChunkCase("5;ext\rX", .badChunkSize),
        ChunkCase("+5\r\n", .badChunkSize),
        ChunkCase("0000000000000001\r\n", .badChunkSize),
        ChunkCase("10000000000000000\r\nx", .badChunkSize),
        ChunkCase("5\r\nhello\r\n\r\n", .badChunkSize),
        ChunkCase("5;" + String(repeating: "a", count: 2000), .chunkLineTooLong),
        ChunkCase("5;" + String(repeating: "a", count: 1022) + "\r\n", .chunkLineTooLong),
        ChunkCase("5\r\nhelloX", .badChunkTerminator),
        ChunkCase("5\r\nhello\rX", .badChunkTerminator),
        ChunkCase("5\r\nhello\r\r\n", .badChunkTerminator),
        ChunkCase("5\r\nhello world\r\n", .badChunkTerminator),
        ChunkCase("0\r\nX-T: " + String(repeating: "a", count: 5000) + "\r\n\r\n", .trailersTooLarge),
        ChunkCase("0\r\n" + String(repeating: "A: 1\r\n", count: 700), .trailersTooLarge),
    ]

    @Test(arguments: chunkErrors)
    func chunkedErrors(_ c: ChunkCase) {
        #expect(decode(.chunked, bytes(c.wire)) == .failure(c.error))
        #expect(decode(.chunked, bytes(c.wire), sizes: [1]) == .failure(c.error))
    }

    @Test func lineAndTrailerLimitsAreInclusive() {
        // A size line of exactly maxChunkLine bytes (CR included) is fine; one more is not.
        let line = "5;" + String(repeating: "a", count: 1021) + "\r"
        #expect(line.utf8.count == 1024)
        #expect(decode(.chunked, bytes(line + "\nhello\r\n0\r\n\r\n")) == .success(Decoded(body: bytes("hello"), rest: [])))
        // A trailer section of exactly maxTrailerBytes bytes, blank line included.
        let field = "X: " + String(repeating: "b", count: 4096 - 7) + "\r\n"
        #expect(decode(.chunked, bytes("0\r\n" + field + "\r\n")) == .success(Decoded(body: [], rest: [])))
        #expect(decode(.chunked, bytes("0\r\n" + "Y" + field + "\r\n")) == .failure(.trailersTooLarge))
        var limits = HTTPLimits()
        limits.maxChunkLine = 4
        #expect(decode(.chunked, bytes("12345\r\n"), limits: limits) == .failure(.chunkLineTooLong))
    }
}
