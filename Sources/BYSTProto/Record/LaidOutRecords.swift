import NIOCore

/// Records laid out in one buffer by one thread and sealed in place by another: a link's
/// sealer (its nonces) belongs to the thread that owns the socket, while the session's
/// payloads are made on the event loop. The loop writes each payload between room for the
/// header and room for the tag; the owner seals them where they lie (`RecordSealer.seal(_:)`)
/// and sends the buffer as it is, so the payload bytes are written once and never copied.
///
///   [hdr][payload 1 …][tag][hdr][payload 2 …][tag] …
public struct LaidOutRecords: Sendable {
    public struct Span: Sendable {
        /// Where the record's header goes (a buffer index).
        public let headerIndex: Int
        public let payloadLength: Int
        public let flags: UInt8
    }

    public var buffer: ByteBuffer
    public private(set) var spans: [Span] = []

    public init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    public var isEmpty: Bool { spans.isEmpty }

    /// Reserves a record's header; the caller then writes the payload at the writer index.
    /// Returns the header's index, for `finishRecord` or `abandonRecord`.
    public mutating func beginRecord() -> Int {
        let index = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        return index
    }

    /// Payload bytes written since the record at `headerIndex` began.
    public func payloadLength(since headerIndex: Int) -> Int {
        buffer.writerIndex - headerIndex - RecordFormat.headerSize
    }

    /// Ends the record begun at `headerIndex` (its payload as written, flagged `flags`) and
    /// reserves its tag.
    public mutating func finishRecord(at headerIndex: Int, flags: UInt8) {
        spans.append(Span(headerIndex: headerIndex, payloadLength: payloadLength(since: headerIndex), flags: flags))
        buffer.writeRepeatingByte(0, count: RecordFormat.tagSize)
    }

    /// Drops a record that got no payload.
    public mutating func abandonRecord(at headerIndex: Int) {
        buffer.moveWriterIndex(to: headerIndex)
    }
}
