import NIOCore
import NIOEmbedded
import Testing
@testable import BYSTNode

/// A duplex link's writes leave as one HTTP chunk per flush (PROTOCOL.md §6.1), each framed
/// with its own size, and a chunk already handed to the socket keeps its bytes while the next
/// one is framed in the reused header buffer.
@Suite struct ChunkedOutboundTests {
    private static func outbound(_ channel: EmbeddedChannel) throws -> String {
        var all = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
        return String(buffer: all)
    }

    @Test func eachFlushIsOneChunkOfItsWrites() throws {
        let channel = EmbeddedChannel(handler: HTTPClientFraming(requestMethod: "POST", upstream: .chunkedBody))
        defer { _ = try? channel.finish() }
        channel.write(ByteBuffer(string: "hello "), promise: nil)
        channel.write(ByteBuffer(string: "world"), promise: nil)
        channel.flush()
        // Held, not yet read: the next flush must not write over these bytes.
        var first: [ByteBuffer] = []
        while let part = try channel.readOutbound(as: ByteBuffer.self) { first.append(part) }
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.write(ByteBuffer(string: String(repeating: "x", count: 300)), promise: written)
        channel.flush()
        try written.futureResult.wait()
        #expect(first.map { String(buffer: $0) }.joined() == "b\r\nhello world\r\n")
        #expect(try Self.outbound(channel) == "12c\r\n" + String(repeating: "x", count: 300) + "\r\n")
        channel.flush()   // nothing written since: no empty chunk (that would end the body)
        #expect(try Self.outbound(channel) == "")
    }
}
