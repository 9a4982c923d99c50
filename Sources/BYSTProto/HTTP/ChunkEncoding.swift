// Send path of a chunked body (RFC 9112 §7.1):
//
//   writeHeader(size) ─▶ "<hex>\r\n"   then the caller writes `size` data bytes
//   writeTrailer      ─▶ "\r\n"
//   … more chunks …   ─▶ writeLastChunk: "0\r\n\r\n"
//
// The payload is never copied here: callers frame data they already hold in buffers.
import NIOCore

/// Writes the framing around chunk data.
///
/// **Invariants**: sizes are written in lowercase hex without leading zeros;
/// `overhead(forChunkOf:)` equals the bytes `writeHeader` plus `writeTrailer` write.
public enum ChunkEncoding {
    /// Appends the chunk-size line for `size` bytes of data (`size > 0`: a zero size would
    /// be the last chunk and end the body).
    public static func writeHeader(size: Int, into out: inout ByteBuffer) {
        precondition(size > 0, "an empty chunk would end the body")
        let digits = hexDigitCount(size)
        out.reserveCapacity(minimumWritableBytes: digits + 2)
        for index in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: size >> (index * 4)) & 0xF
            out.writeInteger(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
        out.writeStaticString("\r\n")
    }

    /// Appends the CRLF that follows chunk data.
    public static func writeTrailer(into out: inout ByteBuffer) {
        out.writeStaticString("\r\n")
    }

    /// Appends the last chunk and the empty trailer section: `0\r\n\r\n`.
    public static func writeLastChunk(into out: inout ByteBuffer) {
        out.writeStaticString("0\r\n\r\n")
    }

    /// Appends a whole chunk: header, `data`, CRLF. Nothing for empty data.
    public static func writeChunk(_ data: ByteBuffer, into out: inout ByteBuffer) {
        guard data.readableBytes > 0 else { return }
        writeHeader(size: data.readableBytes, into: &out)
        var data = data
        out.writeBuffer(&data)
        writeTrailer(into: &out)
    }

    /// Bytes of framing around one chunk of `size` data bytes: the size line and the CRLF
    /// after the data. 0 for `size <= 0`, since no empty chunk is ever written.
    public static func overhead(forChunkOf size: Int) -> Int {
        size > 0 ? hexDigitCount(size) + 4 : 0
    }

    /// Hex digits of a positive `value`.
    private static func hexDigitCount(_ value: Int) -> Int {
        max(1, (Int.bitWidth - value.leadingZeroBitCount + 3) / 4)
    }
}
