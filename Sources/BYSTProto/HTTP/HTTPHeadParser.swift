// Receive path of one HTTP head (RFC 9112 §2–§5):
//
//   socket bytes ──append──▶ inbound ByteBuffer
//   parseRequest/parseResponse: search new bytes for LF (from where the last call stopped)
//       ─▶ each completed line is parsed at once: start line, then one field per line
//       ─▶ blank line: move the reader index past the head, return it, reset
//       ─▶ maxHeadBytes buffered without a blank line: headTooLarge
//
// The reader index does not move until the whole head is there (the ByteToMessageDecoder
// contract), so the caller keeps the bytes; this parser keeps only offsets into them and
// the fields parsed so far.
import NIOCore

/// Incremental parser for request and response heads.
///
/// **Invariants**: every byte is examined once however the input is split (offsets of the
/// scan survive between calls), so feeding a head one byte at a time costs O(head size);
/// no more than `limits.maxHeadBytes` bytes of one head are ever examined; after a
/// successful parse the parser is ready for the next head; after an error it rethrows
/// that error. Between calls the caller may append to the buffer or discard bytes before
/// the reader index, but must not consume or change readable bytes.
public struct HTTPHeadParser: Sendable {
    public let limits: HTTPLimits
    private var request = HeadProgress<HTTPRequestLine>()
    private var response = HeadProgress<HTTPStatusLine>()
    private var failure: HTTPError?

    public init(limits: HTTPLimits = .init()) {
        self.limits = limits
    }

    /// Consumes the head (through the blank line) from `input` when complete and returns
    /// it; returns nil (consuming nothing) when more bytes are needed.
    public mutating func parseRequest(_ input: inout ByteBuffer) throws(HTTPError) -> HTTPRequestHead? {
        guard let head = try Self.parse(&input, progress: &request, failure: &failure, limits: limits) else { return nil }
        return HTTPRequestHead(method: head.line.method, target: head.line.target,
                               version: head.line.version, headers: head.headers)
    }

    /// Consumes the head (through the blank line) from `input` when complete and returns
    /// it; returns nil (consuming nothing) when more bytes are needed.
    public mutating func parseResponse(_ input: inout ByteBuffer) throws(HTTPError) -> HTTPResponseHead? {
        guard let head = try Self.parse(&input, progress: &response, failure: &failure, limits: limits) else { return nil }
        return HTTPResponseHead(status: head.line.status, reason: head.line.reason,
                                version: head.line.version, headers: head.headers)
    }

    private static func parse<Line>(
        _ input: inout ByteBuffer, progress: inout HeadProgress<Line>, failure: inout HTTPError?, limits: HTTPLimits
    ) throws(HTTPError) -> (line: Line, headers: HTTPHeaders)? {
        if let failure { throw failure }
        do throws(HTTPError) {
            // A buffer shorter than what we scanned is not the one we scanned: start over.
            if progress.scanned > input.readableBytes { progress = HeadProgress() }
            let window = min(input.readableBytes, limits.maxHeadBytes)
            let scan: Result<Int?, HTTPError> = input.withUnsafeReadableBytes { bytes in
                Result { () throws(HTTPError) -> Int? in
                    try progress.advance(over: UnsafeRawBufferPointer(rebasing: bytes.prefix(window)), limits: limits)
                }
            }
            guard let length = try scan.get(), let line = progress.startLine else {
                // RFC 9110 §5.4 leaves field limits to us; refuse as soon as ours is reached.
                if input.readableBytes >= limits.maxHeadBytes { throw .headTooLarge }
                return nil
            }
            input.moveReaderIndex(forwardBy: length)
            let headers = progress.headers
            progress = HeadProgress()
            return (line, headers)
        } catch {
            failure = error
            progress = HeadProgress()
            throw error
        }
    }
}

/// How far one head has been scanned and what its completed lines held.
struct HeadProgress<Line: HTTPStartLine>: Sendable {
    /// Bytes from the reader index already searched for LF.
    var scanned = 0
    /// Offset of the first byte of the line not yet completed.
    var lineStart = 0
    /// The parsed start line, once its LF arrived.
    var startLine: Line?
    var headers = HTTPHeaders()

    /// Scans `bytes` (the readable bytes, at most `maxHeadBytes`) from where the last call
    /// stopped; returns the length of the head once its blank line is in `bytes`.
    mutating func advance(over bytes: UnsafeRawBufferPointer, limits: HTTPLimits) throws(HTTPError) -> Int? {
        while scanned < bytes.count {
            guard let newline = bytes[scanned...].firstIndex(of: HTTPSyntax.lf) else {
                scanned = bytes.count
                return nil
            }
            // RFC 9112 §2.2: a recipient MAY accept a bare LF as a line terminator.
            var end = newline
            if end > lineStart, bytes[end - 1] == HTTPSyntax.cr { end -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<end])
            scanned = newline + 1
            lineStart = newline + 1
            if try complete(line: line, limits: limits) { return newline + 1 }
        }
        return nil
    }

    /// Takes one completed line; true when it was the blank line ending the head.
    private mutating func complete(line: UnsafeRawBufferPointer, limits: HTTPLimits) throws(HTTPError) -> Bool {
        guard startLine != nil else {
            if line.isEmpty {
                guard Line.skipsLeadingEmptyLines else { throw .malformedHead("empty line before status line") }
                return false
            }
            startLine = try Line(parsing: line)
            return false
        }
        if line.isEmpty { return true }
        guard headers.count < limits.maxHeaders else { throw .tooManyHeaders }
        let field = try HTTPFieldLine(parsing: line)
        headers.add(field.name, field.value)
        return false
    }
}
