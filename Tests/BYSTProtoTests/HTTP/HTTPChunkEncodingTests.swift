import NIOCore
import Testing
@testable import BYSTProto

@Suite struct HTTPChunkEncodingTests {
    static let sizes: [(Int, String)] = [
        (1, "1"), (9, "9"), (10, "a"), (15, "f"), (16, "10"), (255, "ff"), (256, "100"), (4095, "fff"),
        (4096, "1000"), (16_384, "4000"), (65_535, "ffff"), (65_536, "10000"), (1 << 20, "100000"),
        (0xDEAD_BEEF, "deadbeef"), (Int.max, "7fffffffffffffff"),
    ]

    @Test(arguments: sizes)
    func headerIsLowercaseHexAndOverheadMatches(size: Int, hex: String) {
        var out = ByteBuffer()
        ChunkEncoding.writeHeader(size: size, into: &out)
        #expect(String(buffer: out) == hex + "\r\n")
        ChunkEncoding.writeTrailer(into: &out)
        #expect(ChunkEncoding.overhead(forChunkOf: size) == out.readableBytes)
    }

    @Test func lastChunkAndWholeChunks() throws {
        var out = ByteBuffer()
        ChunkEncoding.writeLastChunk(into: &out)
        #expect(String(buffer: out) == "0\r\n\r\n")
        #expect(ChunkEncoding.overhead(forChunkOf: 0) == 0)

        out.clear()
        ChunkEncoding.writeChunk(ByteBuffer(string: "0123456789abcdefX"), into: &out)
        ChunkEncoding.writeChunk(ByteBuffer(), into: &out)
        ChunkEncoding.writeLastChunk(into: &out)
        #expect(String(buffer: out) == "11\r\n0123456789abcdefX\r\n0\r\n\r\n")
        var decoder = HTTPBodyDecoder(framing: .chunked)
        #expect(try decoder.next(&out) == .data(ByteBuffer(string: "0123456789abcdefX")))
        #expect(try decoder.next(&out) == .end)
    }

    @Test func everySizeUpTo4097DecodesBack() throws {
        var out = ByteBuffer()
        var total = 0
        for size in 1...4097 {
            let before = out.readableBytes
            ChunkEncoding.writeHeader(size: size, into: &out)
            out.writeRepeatingByte(UInt8(truncatingIfNeeded: size), count: size)
            ChunkEncoding.writeTrailer(into: &out)
            #expect(out.readableBytes - before == size + ChunkEncoding.overhead(forChunkOf: size))
            total += size
        }
        ChunkEncoding.writeLastChunk(into: &out)
        var decoder = HTTPBodyDecoder(framing: .chunked)
        var decoded = 0
        while case .data(let data) = try decoder.next(&out) { decoded += data.readableBytes }
        #expect(decoded == total && decoder.isComplete && out.readableBytes == 0)
    }
}
