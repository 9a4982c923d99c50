// The record side of a LinkMachine (PROTOCOL.md §4): bytes in, records opened in place;
// payloads written by the caller into its own buffer, compressed and sealed in place:
//
//   receive / readInbound ─▶ inbound ─▶ next (or openRecord on the data plane) ─▶ payload
//   beginRecord ▸ caller appends frames ▸ finishRecord: [zstd] ▸ seal ─▶ caller writes the buffer
import NIOCore

extension LinkMachine {
    /// Records sealed so far (the send nonce).
    public var recordsSealed: UInt64 { sealer?.recordsSealed ?? 0 }
    /// What this side compresses: the negotiated feature and our setting (`setCompression`).
    public var compressionScope: CompressionScope { compressor.scope }
    public var compressionCounters: RecordCompressor.Counters { compressor.counters }
    /// Bytes received and not consumed yet.
    public var unreadBytes: Int { inbound.readableBytes }

    // MARK: Receiving

    /// Socket bytes, copied in: records are decrypted in place, and transports keep their read
    /// buffers for reuse (decrypting in those would copy them).
    public mutating func receive(_ bytes: inout ByteBuffer) {
        if case .closed = state { return }
        if inbound.readableBytes == 0 { inbound.clear() }
        inbound.writeBuffer(&bytes)
    }

    /// Lets `read` (a socket's `recv`) write straight into the inbound buffer, with at least
    /// `reserving` bytes of room, and keeps the bytes it reports; returns what `read` returned.
    /// Room at the front is reused before the buffer grows: a part record left from the last
    /// read moves down (a copy of less than one record).
    public mutating func readInbound(reserving: Int, _ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        if inbound.readableBytes == 0 {
            inbound.clear()
        } else if inbound.writableBytes < reserving, inbound.readerIndex > 0 {
            inbound.discardReadBytes()
        }
        inbound.reserveCapacity(minimumWritableBytes: reserving)
        let count = inbound.withUnsafeMutableWritableBytes(read)
        if count > 0 { inbound.moveWriterIndex(forwardBy: count) }
        return count
    }

    /// Between reads: lets go of an empty buffer that a large record made bigger than
    /// `keepingCapacity`, and of consumed space in front of a part record past 1 MiB.
    public mutating func compactInbound(keepingCapacity: Int) {
        if inbound.readableBytes == 0 {
            if inbound.capacity > keepingCapacity { inbound = ByteBuffer() } else { inbound.clear() }
        } else if inbound.readerIndex > 1 << 20 {
            inbound.discardReadBytes()
        }
    }

    /// The next complete record, opened in place and not decompressed: the data plane's path
    /// (records it does not handle go to `payload(of:)` on the machine that handed off).
    public mutating func openRecord() throws(Failure) -> RecordOpener.Opened? {
        guard case .established = state else { throw unusable }
        do throws(Failure) {
            return try open()
        } catch {
            close()
            throw error
        }
    }

    /// Opens the next record if it is complete (the caller closes the machine on a failure).
    mutating func open() throws(Failure) -> RecordOpener.Opened? {
        do throws(RecordError) { return try opener?.open(&inbound) } catch { throw .record(error) }
    }

    /// An opened record's payload: as it is, or decompressed when flagged — only on a link that
    /// negotiated compression, and to at most our max record payload (PROTOCOL.md §4.2).
    public mutating func payload(of record: RecordOpener.Opened) throws(Failure) -> ByteBuffer {
        guard isEstablished else { throw unusable }
        do throws(RecordError) {
            return try compressor.decompress(record, limit: maxPayload)
        } catch {
            close()
            throw .record(error)
        }
    }

    // MARK: Sealing

    /// Reserves a record at the writer index of `buffer`; append its payload (at most
    /// `peerMaxPayload` bytes), then `finishRecord`, or `abandonRecord` if there is none.
    /// Nil when this machine does not seal: not established, handed off or closed.
    public func beginRecord(in buffer: inout ByteBuffer) -> RecordSealer.Mark? {
        guard case .established = state else { return nil }
        return sealer?.beginRecord(in: &buffer)
    }

    /// Payload bytes written since `mark`.
    public func payloadLength(since mark: RecordSealer.Mark, in buffer: ByteBuffer) -> Int {
        sealer?.payloadLength(since: mark, in: buffer) ?? 0
    }

    /// Drops a record begun with `beginRecord` that got no payload.
    public func abandonRecord(_ mark: RecordSealer.Mark, in buffer: inout ByteBuffer) {
        sealer?.abandonRecord(mark, in: &buffer)
    }

    /// Compresses the payload written since `mark` when this link compresses such records
    /// (PROTOCOL.md §4.2), then seals the record in place.
    public mutating func finishRecord(_ mark: RecordSealer.Mark, carriesPackets: Bool, in buffer: inout ByteBuffer) throws(Failure) {
        guard case .established = state else { throw unusable }
        let payloadStart = buffer.writerIndex - payloadLength(since: mark, in: buffer)
        let flags = compressor.compressPayload(in: &buffer, from: payloadStart, carriesPackets: carriesPackets)
        do throws(RecordError) { try sealer?.finishRecord(mark, flags: flags, in: &buffer) } catch { throw sealingFailed(error) }
    }

    /// Appends one whole record carrying `payload` (a copy) with `flags`: the initiator's
    /// empty first record (the hot paths lay records out in place instead).
    public mutating func seal(_ payload: ByteBuffer, flags: UInt8, into buffer: inout ByteBuffer) throws(Failure) {
        guard case .established = state else { throw unusable }
        do throws(RecordError) { try sealer?.seal(payload, flags: flags, into: &buffer) } catch { throw sealingFailed(error) }
    }

    /// Seals records another thread laid out (the machine that handed off made their
    /// payloads, compressed by `layOutRecord`), where they lie.
    public mutating func seal(_ records: inout LaidOutRecords) throws(Failure) {
        guard case .established = state else { throw unusable }
        do throws(RecordError) { try sealer?.seal(&records) } catch { throw sealingFailed(error) }
    }

    /// Ends a record whose payload was written into `records` since `headerIndex`: compressed
    /// in place when this link compresses such records, then left for the owner of the
    /// sealer (`seal(_:)` on the machine `handOff` returned).
    public mutating func layOutRecord(at headerIndex: Int, in records: inout LaidOutRecords, carriesPackets: Bool) {
        let payloadStart = headerIndex + RecordFormat.headerSize
        let flags = compressor.compressPayload(in: &records.buffer, from: payloadStart, carriesPackets: carriesPackets)
        records.finishRecord(at: headerIndex, flags: flags)
    }

    /// A sealing failure (counter exhausted, payload over the peer's limit) closes the link.
    private mutating func sealingFailed(_ error: RecordError) -> Failure {
        close()
        return .record(error)
    }

    private var unusable: Failure { if case .closed = state { .closed } else { .notEstablished } }
}
