@testable import BYSTNode
import BYSTProto
import NIOCore
import NIOEmbedded

/// The HTTP front end's parsing (PROTOCOL.md §6): heads, body framing and decoding, and
/// split-mode pairing of upstream POSTs by link token.
///
/// Input: `mode ‖ split ‖ bytes`. Mode (low 2 bits): 0 requests on one connection, as the
/// server reads them (head, target, framing, split pairing, body, next head…); 1 a response
/// as a client reads it, to the method in bits 4–5; 2 a bare chunked body. Bit 2 picks
/// small limits, so that they are reachable.
/// Invariants: the same bytes parse to the same heads, body and error however they are
/// cut; body parts are never empty; a finished body consumes nothing more; one connection
/// holds at most one unpaired split token, with at most its share of waiting bytes.
enum HTTPFuzz {
    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let split = input.byte()
        var limits = HTTPLimits()
        if mode & 4 != 0 {
            limits.maxHeadBytes = 512
            limits.maxHeaders = 4
            limits.maxChunkLine = 24
            limits.maxTrailerBytes = 32
        }
        let bytes = input.rest()
        switch mode & 3 {
        case 0: requests(bytes, limits: limits, split: split)
        case 1: response(bytes, method: ["POST", "GET", "HEAD", "CONNECT"][Int(mode >> 4) & 3], limits: limits, split: split)
        default: chunkedBody(bytes, limits: limits, split: split)
        }
    }

    // MARK: Requests (server side)

    static let path = "/byst"

    static func requests(_ bytes: [UInt8], limits: HTTPLimits, split: UInt8) {
        let loop = EmbeddedEventLoop()
        defer { try? loop.syncShutdownGracefully() }
        let registry = SplitRegistry(eventLoop: loop, pairingTimeout: .seconds(1))
        let connection = registry.newOrigin(source: nil)
        var rest = bytes
        // Requests follow each other on a keep-alive connection (split upstream POSTs).
        for _ in 0..<8 {
            let whole = parse(rest, limits: limits, split: 0) { (parser: inout HTTPHeadParser, buffer: inout ByteBuffer) throws(HTTPError) in
                try parser.parseRequest(&buffer)
            }
            let cut = parse(rest, limits: limits, split: split) { (parser: inout HTTPHeadParser, buffer: inout ByteBuffer) throws(HTTPError) in
                try parser.parseRequest(&buffer)
            }
            invariant(whole == cut, "request head parsed differently when cut: \(whole) vs \(cut)")
            guard case .head(let head, let after) = whole else { break }
            invariant(head.headers.count <= limits.maxHeaders, "\(head.headers.count) header fields")
            invariant(rest.count - after.count <= limits.maxHeadBytes, "a head of \(rest.count - after.count) bytes")
            let following = route(head, body: after, registry: registry, from: connection, limits: limits, split: split)
            invariant(registry.unpairedCount <= 1, "one connection holds \(registry.unpairedCount) unpaired split tokens")
            invariant(registry.pendingBytes <= SplitRegistry.Limits().pendingBytesPerToken, "\(registry.pendingBytes) bytes wait")
            guard let following else { break }
            rest = following
        }
        // Tokens that never got a downstream are forgotten after the pairing timeout.
        loop.advanceTime(by: .seconds(2))
        invariant(registry.count == 0, "\(registry.count) split tokens outlived the pairing timeout")
        invariant(registry.pendingBytes == 0, "\(registry.pendingBytes) bytes outlived their tokens")
    }

    /// What HTTPServerFrontEnd does with one head; the bytes after the request if the
    /// connection would carry another one.
    static func route(_ head: HTTPRequestHead, body: [UInt8], registry: SplitRegistry, from connection: SplitOrigin,
                      limits: HTTPLimits, split: UInt8) -> [UInt8]? {
        guard let target = try? HTTPRequestTarget(parsing: head.target), target.path == path else { return nil }
        invariant(target.path.hasPrefix("/"), "path \(target.path)")
        guard let framing = try? HTTPBodyFraming.request(head) else { return nil }
        if case .contentLength(let length) = framing {
            invariant((0...HTTPBodyFraming.maxContentLength).contains(length), "content length \(length)")
        }
        guard let token = target.value("t") else {
            // A duplex link: its body is link input until the end.
            _ = decodeBody(body, framing: framing, limits: limits, split: split)
            return nil
        }
        guard SplitRegistry.isValidToken(token) else { return nil }
        invariant(Base64URL.decode(token)?.count == 16, "token \(token) accepted")
        guard head.method == "POST", let sequence = target.value("s").flatMap({ UInt64($0) }) else { return nil }
        let kind: SplitRegistry.PartKind
        do throws(SplitRegistry.Refusal) { kind = try registry.beginUpstream(token, sequence: sequence, from: connection) } catch { return nil }
        let decoded = decodeBody(body, framing: framing, limits: limits, split: split)
        // As the front end: a repeated last part is hashed and compared, never delivered.
        var hasher = SplitPartHasher(sequence: sequence, digest: registry.makePartDigest())
        for part in decoded.parts {
            hasher.update(part)
            guard case .next = kind else { continue }
            do throws(SplitRegistry.Refusal) { try registry.deliver(token, part) } catch { return nil }
        }
        guard decoded.outcome == .end else { return nil }
        let digest = hasher.finish()
        if case .repeated(let received) = kind, digest != received { return nil }
        registry.finishUpstream(token, sequence: sequence, digest)
        let keepAlive = head.version == .http11 && !head.headers.containsToken("close", in: "connection")
        return keepAlive ? decoded.remaining : nil
    }

    // MARK: Response (client side)

    static func response(_ bytes: [UInt8], method: String, limits: HTTPLimits, split: UInt8) {
        let whole = parse(bytes, limits: limits, split: 0) { (parser: inout HTTPHeadParser, buffer: inout ByteBuffer) throws(HTTPError) in
            try parser.parseResponse(&buffer)
        }
        let cut = parse(bytes, limits: limits, split: split) { (parser: inout HTTPHeadParser, buffer: inout ByteBuffer) throws(HTTPError) in
            try parser.parseResponse(&buffer)
        }
        invariant(whole == cut, "response head parsed differently when cut: \(whole) vs \(cut)")
        guard case .head(let head, let after) = whole else { return }
        invariant((100...999).contains(head.status), "status \(head.status)")
        guard let framing = try? HTTPBodyFraming.response(head, requestMethod: method) else { return }
        _ = decodeBody(after, framing: framing, limits: limits, split: split)
    }

    // MARK: Bodies

    static func chunkedBody(_ bytes: [UInt8], limits: HTTPLimits, split: UInt8) {
        _ = decodeBody(bytes, framing: .chunked, limits: limits, split: split)
    }

    enum BodyOutcome: Equatable {
        case end
        case needMore
        case failed(HTTPError)
    }

    struct DecodedBody {
        var parts: [ByteBuffer] = []
        var outcome = BodyOutcome.needMore
        /// Bytes after the body (the next message), when it ended.
        var remaining: [UInt8] = []
        var data: [UInt8] { parts.flatMap { Array($0.readableBytesView) } }
    }

    /// Decodes the body whole and cut, checks both agree, and returns the cut one.
    static func decodeBody(_ bytes: [UInt8], framing: HTTPBodyFraming, limits: HTTPLimits, split: UInt8) -> DecodedBody {
        let whole = decode(bytes, framing: framing, limits: limits, split: 0)
        let cut = decode(bytes, framing: framing, limits: limits, split: split)
        invariant(whole.outcome == cut.outcome, "body outcome \(whole.outcome) whole, \(cut.outcome) cut")
        invariant(whole.data == cut.data, "body data differs when cut")
        invariant(whole.remaining == cut.remaining, "bytes after the body differ when cut")
        return cut
    }

    static func decode(_ bytes: [UInt8], framing: HTTPBodyFraming, limits: HTTPLimits, split: UInt8) -> DecodedBody {
        var decoder = HTTPBodyDecoder(framing: framing, limits: limits)
        var body = DecodedBody()
        var buffer = ByteBuffer()
        let pieces = Chunker.pieces(of: bytes, seed: split)
        for (index, piece) in pieces.enumerated() {
            buffer.writeBytes(piece)
            do throws(HTTPError) {
                while let part = try decoder.next(&buffer) {
                    guard case .data(let slice) = part else {
                        // Finished: it stays finished and leaves the next message alone.
                        let before = buffer.readerIndex
                        invariant((try? decoder.next(&buffer)) == .end && buffer.readerIndex == before, "body went on after its end")
                        body.outcome = .end
                        body.remaining = Array(buffer.readableBytesView) + pieces[(index + 1)...].joined()
                        return body
                    }
                    invariant(slice.readableBytes > 0, "empty body part")
                    body.parts.append(slice)
                }
            } catch {
                invariant((try? decoder.next(&buffer)) == nil, "a failed decoder went on")
                body.outcome = .failed(error)
                return body
            }
        }
        do throws(HTTPError) {
            try decoder.endOfInput()
            body.outcome = .end
        } catch {
            body.outcome = .failed(error)
        }
        return body
    }

    // MARK: Heads

    enum HeadOutcome<Head: Equatable>: Equatable {
        /// The head and the bytes after it.
        case head(Head, [UInt8])
        case needMore
        case failed(HTTPError)
    }

    /// Feeds `bytes` to a parser in pieces until a head is complete or an error.
    static func parse<Head: Equatable>(
        _ bytes: [UInt8], limits: HTTPLimits, split: UInt8,
        _ step: (inout HTTPHeadParser, inout ByteBuffer) throws(HTTPError) -> Head?
    ) -> HeadOutcome<Head> {
        var parser = HTTPHeadParser(limits: limits)
        var buffer = ByteBuffer()
        let pieces = Chunker.pieces(of: bytes, seed: split)
        for (index, piece) in pieces.enumerated() {
            buffer.writeBytes(piece)
            let before = buffer.readerIndex
            do throws(HTTPError) {
                guard let head = try step(&parser, &buffer) else {
                    invariant(buffer.readerIndex == before, "an incomplete head consumed bytes")
                    continue
                }
                let after = Array(buffer.readableBytesView) + pieces[(index + 1)...].joined()
                return .head(head, after)
            } catch {
                return .failed(error)
            }
        }
        return .needMore
    }
}
