// Receive path of one HTTP body, after its head:
//
//   inbound ByteBuffer ──next()──▶ .data(slice of inbound) … .data ─▶ .end
//       .contentLength(n): slices until n bytes          ─▶ .end
//       .chunked:          ChunkedBodyState               ─▶ .end after the trailers
//       .untilClose:       every readable byte            ─▶ .end after endOfInput()
//       .none:             .end at once
//
// Bytes after `.end` are left in the buffer: they belong to the next message.
import NIOCore

/// Decodes one message body from the caller's buffer without buffering any of it.
///
/// **Invariants**: data parts are zero-copy slices of the input (`readSlice`), never
/// empty; the decoder's state is a framing, a phase and counters, so memory stays bounded
/// whatever the peer sends; once `.end` is returned it keeps returning `.end` and
/// consumes nothing; once an error is thrown it keeps throwing it.
public struct HTTPBodyDecoder: Sendable {
    public enum Part: Sendable, Equatable {
        /// Body bytes: a slice of the input buffer.
        case data(ByteBuffer)
        /// The body is complete.
        case end
    }

    private enum State: Sendable {
        /// A Content-Length body with this many bytes still to come.
        case fixed(remaining: Int)
        case chunked(ChunkedBodyState)
        /// A close-delimited body: everything until EOF.
        case untilClose
        /// The body is complete.
        case done
        /// The peer broke the framing; the error is rethrown.
        case failed(HTTPError)
    }

    public let framing: HTTPBodyFraming
    public let limits: HTTPLimits
    private var state: State

    /// `framing` comes from `HTTPBodyFraming`, which never yields a negative length.
    public init(framing: HTTPBodyFraming, limits: HTTPLimits = .init()) {
        self.framing = framing
        self.limits = limits
        switch framing {
        case .none: state = .done
        case .contentLength(let length):
            precondition(length >= 0, "negative Content-Length framing")
            state = length == 0 ? .done : .fixed(remaining: length)
        case .chunked: state = .chunked(ChunkedBodyState())
        case .untilClose: state = .untilClose
        }
    }

    /// Whether the whole body has been decoded.
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// The next piece of body: zero-copy slices of `input`, as large as available;
    /// `.end` once the body is complete (then stops consuming: bytes after it belong to
    /// the next message); nil = need more input.
    public mutating func next(_ input: inout ByteBuffer) throws(HTTPError) -> Part? {
        switch state {
        case .done:
            return .end
        case .failed(let error):
            throw error
        case .untilClose:
            guard input.readableBytes > 0, let slice = input.readSlice(length: input.readableBytes) else { return nil }
            return .data(slice)
        case .fixed(let remaining):
            let count = min(remaining, input.readableBytes)
            guard count > 0, let slice = input.readSlice(length: count) else { return nil }
            state = count == remaining ? .done : .fixed(remaining: remaining - count)
            return .data(slice)
        case .chunked(var chunked):
            do throws(HTTPError) {
                let part = try chunked.next(&input, limits: limits)
                state = part == .end ? .done : .chunked(chunked)
                return part
            } catch {
                state = .failed(error)
                throw error
            }
        }
    }

    /// The connection reached EOF: throws `.truncatedBody` unless the body is complete or
    /// framing is `.untilClose` (which EOF completes).
    public mutating func endOfInput() throws(HTTPError) {
        switch state {
        case .done: return
        case .untilClose: state = .done
        case .failed(let error): throw error
        case .fixed, .chunked:
            state = .failed(.truncatedBody)
            throw .truncatedBody
        }
    }
}
