// Chunked body decoding (RFC 9112 §7.1), byte by byte for framing, in slices for data:
//
//   size line:  1*15 HEXDIG [ BWS ";" chunk-ext ] (CR)LF   ── counted, ≤ maxChunkLine
//       size > 0 ─▶ data: readSlice(min(remaining, readable)) ─▶ (CR)LF ─▶ size line
//       size = 0 ─▶ trailer lines until an empty line (≤ maxTrailerBytes, ignored) ─▶ end
//
// Framing bytes are consumed as they are read, so nothing is rescanned and the only
// state is a phase and two counters.
import NIOCore

/// Where a chunked body decoder is inside the chunked grammar.
///
/// **Invariants**: `phase` plus two integers is all the state; data is never copied; the
/// size line is at most `maxChunkLine` bytes and the trailer section at most
/// `maxTrailerBytes`; a chunk size has at most 15 hex digits, so it fits in 60 bits.
struct ChunkedBodyState: Sendable {
    enum Phase: Sendable, Equatable {
        /// Reading the hex digits of a size line; `digits` so far, `size` their value.
        case size(size: Int, digits: Int)
        /// After the digits, BWS that must lead to ";" (RFC 9112 §7.1.1).
        case sizeWhitespace(size: Int)
        /// Inside chunk extensions, which are skipped up to the LF.
        case sizeExtension(size: Int)
        /// A CR ended the size line; the LF must follow.
        case sizeLF(size: Int)
        /// Inside chunk data, `remaining` bytes to go.
        case data(remaining: Int)
        /// After chunk data: CRLF or LF must follow.
        case dataCR
        /// After chunk data and its CR: the LF must follow.
        case dataLF
        /// After the last chunk: trailer lines; `lineEmpty` while the current line has
        /// nothing but a CR so far.
        case trailer(lineEmpty: Bool)
        /// The blank line after the trailers was read: the body is complete.
        case done
    }

    /// The largest number of hex digits in a chunk size: 15 digits are at most 2^60 − 1,
    /// so the value (and any count added to it) fits an Int on every platform we build.
    static let maxSizeDigits = 15

    private(set) var phase = Phase.size(size: 0, digits: 0)
    /// Bytes of the current size line so far (CR and extensions included, LF not).
    private var lineLength = 0
    /// Bytes of the trailer section so far, blank line included.
    private var trailerBytes = 0

    /// The next data slice, `.end`, or nil when `input` ran out first.
    mutating func next(_ input: inout ByteBuffer, limits: HTTPLimits) throws(HTTPError) -> HTTPBodyDecoder.Part? {
        while true {
            if case .done = phase { return .end }
            if case .data(let remaining) = phase {
                let count = min(remaining, input.readableBytes)
                guard count > 0, let slice = input.readSlice(length: count) else { return nil }
                phase = count == remaining ? .dataCR : .data(remaining: remaining - count)
                return .data(slice)
            }
            guard let byte = input.readInteger(as: UInt8.self) else { return nil }
            try advance(byte, limits: limits)
        }
    }

    /// Moves through one framing byte.
    private mutating func advance(_ byte: UInt8, limits: HTTPLimits) throws(HTTPError) {
        switch phase {
        case .size(let size, let digits):
            if byte != HTTPSyntax.lf { try countLineByte(limits: limits) }
            if let value = HTTPSyntax.hexValue(byte) {
                guard digits < Self.maxSizeDigits else { throw .badChunkSize }
                phase = .size(size: size << 4 | value, digits: digits + 1)
                return
            }
            // Anything but a hex digit ends the size, which must have at least one digit.
            guard digits > 0 else { throw .badChunkSize }
            try endOfSize(byte, size: size)
        case .sizeWhitespace(let size):
            try countLineByte(limits: limits)
            if HTTPSyntax.isWhitespace(byte) { return }
            guard byte == UInt8(ascii: ";") else { throw .badChunkSize }
            phase = .sizeExtension(size: size)
        case .sizeExtension(let size):
            if byte == HTTPSyntax.lf { return endOfLine(size: size) }
            try countLineByte(limits: limits)
            if byte == HTTPSyntax.cr { phase = .sizeLF(size: size) }
        case .sizeLF(let size):
            guard byte == HTTPSyntax.lf else { throw .badChunkSize }
            endOfLine(size: size)
        case .dataCR:
            if byte == HTTPSyntax.lf {
                phase = .size(size: 0, digits: 0)
            } else if byte == HTTPSyntax.cr {
                phase = .dataLF
            } else {
                throw .badChunkTerminator
            }
        case .dataLF:
            guard byte == HTTPSyntax.lf else { throw .badChunkTerminator }
            phase = .size(size: 0, digits: 0)
        case .trailer(let lineEmpty):
            // RFC 9112 §7.1.2: trailer fields may be discarded; we only find their end.
            trailerBytes += 1
            guard trailerBytes <= limits.maxTrailerBytes else { throw .trailersTooLarge }
            if byte == HTTPSyntax.lf {
                phase = lineEmpty ? .done : .trailer(lineEmpty: true)
            } else if byte != HTTPSyntax.cr {
                phase = .trailer(lineEmpty: false)
            }
        case .data, .done:
            // `next` handles these before reading a framing byte.
            return
        }
    }

    /// The first byte after the digits of a size line.
    private mutating func endOfSize(_ byte: UInt8, size: Int) throws(HTTPError) {
        switch byte {
        case HTTPSyntax.lf: endOfLine(size: size)
        case HTTPSyntax.cr: phase = .sizeLF(size: size)
        case UInt8(ascii: ";"): phase = .sizeExtension(size: size)
        case HTTPSyntax.sp, HTTPSyntax.htab: phase = .sizeWhitespace(size: size)
        default: throw .badChunkSize
        }
    }

    private mutating func countLineByte(limits: HTTPLimits) throws(HTTPError) {
        lineLength += 1
        guard lineLength <= limits.maxChunkLine else { throw .chunkLineTooLong }
    }

    private mutating func endOfLine(size: Int) {
        lineLength = 0
        phase = size == 0 ? .trailer(lineEmpty: true) : .data(remaining: size)
    }
}
