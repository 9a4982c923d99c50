import NIOCore
import Testing
@testable import BYSTProto

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func pattern(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

/// Encodes `body` as chunks of the given sizes (cycled), then the last chunk.
func chunked(_ body: [UInt8], sizes: [Int], trailer: String = "") -> [UInt8] {
    var out = ByteBuffer()
    var offset = 0
    var index = 0
    while offset < body.count {
        let size = min(sizes[index % sizes.count], body.count - offset)
        ChunkEncoding.writeHeader(size: size, into: &out)
        out.writeBytes(body[offset..<(offset + size)])
        ChunkEncoding.writeTrailer(into: &out)
        offset += size
        index += 1
    }
    if trailer.isEmpty {
        ChunkEncoding.writeLastChunk(into: &out)
    } else {
        out.writeString("0\r\n" + trailer + "\r\n\r\n")
    }
    return Array(out.readableBytesView)
}

/// Splits `wire` into pieces whose sizes come from `sizes` (cycled).
func pieces(_ wire: [UInt8], sizes: [Int]) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var offset = 0
    var index = 0
    while offset < wire.count {
        let size = max(1, min(sizes[index % sizes.count], wire.count - offset))
        result.append(wire[offset..<(offset + size)])
        offset += size
        index += 1
    }
    return result
}

/// Drives a head parser and body decoders over a stream of messages, as the NIO adapters
/// do: head, framing, body parts until `.end`, next head from the same buffer.
struct MessageReader<Head: Equatable> {
    struct Message: Equatable, CustomStringConvertible {
        var head: Head
        var body: [UInt8]
        var description: String { "\(head) + \(body.count) body bytes" }
    }

    let parseHead: (inout HTTPHeadParser, inout ByteBuffer) throws(HTTPError) -> Head?
    let framing: (Head, Int) throws(HTTPError) -> HTTPBodyFraming
    var parser = HTTPHeadParser()
    var inbound = ByteBuffer()
    var pending: (head: Head, decoder: HTTPBodyDecoder, body: [UInt8])?
    var messages: [Message] = []

    init(
        parseHead: @escaping (inout HTTPHeadParser, inout ByteBuffer) throws(HTTPError) -> Head?,
        framing: @escaping (Head, Int) throws(HTTPError) -> HTTPBodyFraming
    ) {
        self.parseHead = parseHead
        self.framing = framing
    }

    mutating func feed(_ piece: some Collection<UInt8>) throws(HTTPError) {
        inbound.writeBytes(piece)
        try drain()
        // Allowed by the parser's contract: only bytes before the reader index go.
        if inbound.readerIndex > 512 { inbound.discardReadBytes() }
    }

    /// EOF: completes a close-delimited body, or throws if a body was cut short.
    mutating func finish() throws(HTTPError) {
        if var current = pending {
            try current.decoder.endOfInput()
            pending = current
            try drain()
        }
    }

    private mutating func drain() throws(HTTPError) {
        while true {
            if var current = pending {
                guard let part = try current.decoder.next(&inbound) else {
                    pending = current  // the decoder consumed framing bytes: keep its state
                    return
                }
                switch part {
                case .data(let data):
                    #expect(data.readableBytes > 0, "decoders never return empty data")
                    current.body += data.readableBytesView
                    pending = current
                case .end:
                    messages.append(Message(head: current.head, body: current.body))
                    pending = nil
                }
            } else {
                guard let head = try parseHead(&parser, &inbound) else { return }
                pending = (head, HTTPBodyDecoder(framing: try framing(head, messages.count)), [])
            }
        }
    }
}

extension MessageReader where Head == HTTPRequestHead {
    static func requests() -> Self {
        Self(parseHead: { parser, input throws(HTTPError) in try parser.parseRequest(&input) },
             framing: { head, _ throws(HTTPError) in try HTTPBodyFraming.request(head) })
    }
}

extension MessageReader where Head == HTTPResponseHead {
    static func responses(methods: [String]) -> Self {
        Self(parseHead: { parser, input throws(HTTPError) in try parser.parseResponse(&input) },
             framing: { head, index throws(HTTPError) in
                 try HTTPBodyFraming.response(head, requestMethod: methods[index])
             })
    }
}
