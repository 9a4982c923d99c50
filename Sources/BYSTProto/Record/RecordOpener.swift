// Receive path of one link direction (PROTOCOL.md §4):
//
//   socket bytes ──append──▶ inbound ByteBuffer
//   open(): wait for 4 header bytes ─▶ check flags, length ≤ our limit (before buffering)
//           ─▶ wait for length+16 bytes ─▶ decrypt in place ─▶ payload slice of inbound
//
// Never relies on how bytes were split by TCP or HTTP chunking.
import NIOCore

/// Opens records in place inside the inbound `ByteBuffer`.
///
/// **Invariants**: records are opened with consecutive nonces from 0; the reader index
/// moves past a record only once it verified; a length above `limits.maxPayload` is an
/// error as soon as the header arrives, so a hostile peer cannot make us buffer more than
/// one maximal record.
public struct RecordOpener {
    private var cipher: RecordCipher

    public struct Opened: Sendable {
        public let flags: UInt8
        /// The plaintext: a slice of the inbound buffer (no copy).
        public var payload: ByteBuffer

        public init(flags: UInt8, payload: ByteBuffer) {
            self.flags = flags
            self.payload = payload
        }
    }

    public init(algorithm: AEADAlgorithm, key: SecretBytes, limits: RecordLimits = .init()) throws(RecordError) {
        cipher = try RecordCipher(algorithm: algorithm, key: key, limits: limits)
    }

    public var recordsOpened: UInt64 { cipher.nextNonce }
    public var limits: RecordLimits { cipher.limits }

    /// Opens the next record if it is complete; `nil` means more bytes are needed.
    public mutating func open(_ buffer: inout ByteBuffer) throws(RecordError) -> Opened? {
        guard let header = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let flags = UInt8(header >> 24)
        let length = Int(header & 0x00FF_FFFF)
        guard flags & ~RecordFormat.knownFlags == 0 else { throw .unknownFlags(flags) }
        guard length <= cipher.limits.maxPayload else {
            throw .tooLarge(length: length, limit: cipher.limits.maxPayload)
        }
        guard buffer.readableBytes >= RecordFormat.overhead + length else { return nil }
        let nonce = try cipher.currentNonce()
        let key = cipher.key
        let result: Result<Void, CryptoError> = buffer.withUnsafeMutableReadableBytes { all in
            let textStart = RecordFormat.headerSize
            let tagStart = textStart + length
            return Result { () throws(CryptoError) in
                try key.open(
                    nonce: nonce, ad: UnsafeRawBufferPointer(rebasing: all[0..<textStart]),
                    text: UnsafeMutableRawBufferPointer(rebasing: all[textStart..<tagStart]),
                    tag: UnsafeRawBufferPointer(rebasing: all[tagStart..<(tagStart + RecordFormat.tagSize)]))
            }
        }
        do throws(CryptoError) { try result.get() } catch .authenticationFailed {
            throw .authenticationFailed
        } catch { throw .crypto(error) }
        try cipher.advance(payloadLength: length)
        let payload = buffer.getSlice(at: buffer.readerIndex + RecordFormat.headerSize, length: length) ?? ByteBuffer()
        buffer.moveReaderIndex(forwardBy: RecordFormat.overhead + length)
        return Opened(flags: flags, payload: payload)
    }

    /// The stream ended: an error if it ended inside a record.
    public func finish(_ buffer: ByteBuffer) throws(RecordError) {
        if buffer.readableBytes > 0 { throw .truncated }
    }
}
