// Send path of one link direction (PROTOCOL.md §4):
//
//   frames ──append──▶ [flags|len24][ payload … ]            (beginRecord / caller writes)
//                      [flags|len24][ ciphertext … ][tag16]  (finishRecord: seal in place)
//   many records ──▶ one ByteBuffer ──▶ one socket write
//
// The payload is encrypted where it lies in the caller's buffer: no copy, no allocation
// once the buffer has capacity.
import NIOCore

/// Seals records in place inside an outgoing `ByteBuffer`.
///
/// **Invariants**: records are sealed with consecutive nonces starting at 0; a record's
/// payload never exceeds `peerMaxPayload`, the limit the peer advertised.
public struct RecordSealer {
    private var cipher: RecordCipher
    /// The largest payload the peer accepts (from its handshake hello).
    public let peerMaxPayload: Int

    /// Where a record's header was reserved; returned by `beginRecord`.
    public struct Mark: Sendable {
        fileprivate let headerIndex: Int
    }

    public init(
        algorithm: AEADAlgorithm, key: SecretBytes, limits: RecordLimits = .init(),
        peerMaxPayload: Int = RecordLimits.defaultMaxPayload
    ) throws(RecordError) {
        cipher = try RecordCipher(algorithm: algorithm, key: key, limits: limits)
        self.peerMaxPayload = min(peerMaxPayload, RecordFormat.maximumEncodableLength)
    }

    /// Records sealed so far (the next nonce).
    public var recordsSealed: UInt64 { cipher.nextNonce }
    public var rekeyCount: Int { cipher.rekeyCount }

    /// Reserves the record header at the writer index; the caller then appends the payload.
    public func beginRecord(in buffer: inout ByteBuffer) -> Mark {
        let mark = Mark(headerIndex: buffer.writerIndex)
        buffer.writeInteger(UInt32(0))
        return mark
    }

    /// Drops a record begun with `beginRecord` that got no payload (nothing was sealed).
    public func abandonRecord(_ mark: Mark, in buffer: inout ByteBuffer) {
        buffer.moveWriterIndex(to: mark.headerIndex)
    }

    /// Payload bytes written since `mark`.
    public func payloadLength(since mark: Mark, in buffer: ByteBuffer) -> Int {
        buffer.writerIndex - mark.headerIndex - RecordFormat.headerSize
    }

    /// Writes the header, encrypts the payload in place and appends the tag.
    public mutating func finishRecord(
        _ mark: Mark, flags: UInt8 = 0, in buffer: inout ByteBuffer
    ) throws(RecordError) {
        let length = payloadLength(since: mark, in: buffer)
        buffer.writeRepeatingByte(0, count: RecordFormat.tagSize)
        try sealInPlace(headerIndex: mark.headerIndex, length: length, flags: flags, in: &buffer)
    }

    /// Seals every record laid out in `records`, in order, where they lie.
    public mutating func seal(_ records: inout LaidOutRecords) throws(RecordError) {
        for span in records.spans {
            try sealInPlace(headerIndex: span.headerIndex, length: span.payloadLength, flags: span.flags, in: &records.buffer)
        }
    }

    /// The record at `headerIndex`: header room, `length` payload bytes, tag room.
    private mutating func sealInPlace(headerIndex: Int, length: Int, flags: UInt8, in buffer: inout ByteBuffer) throws(RecordError) {
        guard length <= peerMaxPayload else { throw .payloadTooLarge(length: length, limit: peerMaxPayload) }
        let header = UInt32(flags) << 24 | UInt32(length)
        buffer.setInteger(header, at: headerIndex)
        let nonce = try cipher.currentNonce()
        let key = cipher.key
        let offset = headerIndex - buffer.readerIndex
        let result: Result<Void, CryptoError> = buffer.withUnsafeMutableReadableBytes { all in
            let record = UnsafeMutableRawBufferPointer(rebasing: all[offset..<(offset + RecordFormat.overhead + length)])
            let textStart = RecordFormat.headerSize
            let tagStart = textStart + length
            return Result { () throws(CryptoError) in
                try key.seal(
                    nonce: nonce, ad: UnsafeRawBufferPointer(rebasing: record[0..<textStart]),
                    text: UnsafeMutableRawBufferPointer(rebasing: record[textStart..<tagStart]),
                    tag: UnsafeMutableRawBufferPointer(rebasing: record[tagStart...]))
            }
        }
        do throws(CryptoError) { try result.get() } catch { throw .crypto(error) }
        try cipher.advance(payloadLength: length)
    }

    /// Appends one whole record carrying `payload` (a copy; the hot path uses begin/finish).
    public mutating func seal(_ payload: ByteBuffer, flags: UInt8 = 0, into buffer: inout ByteBuffer) throws(RecordError) {
        let mark = beginRecord(in: &buffer)
        var payload = payload
        buffer.writeBuffer(&payload)
        try finishRecord(mark, flags: flags, in: &buffer)
    }
}
