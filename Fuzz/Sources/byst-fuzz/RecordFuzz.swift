@testable import BYSTProto
import NIOCore

/// The record layer's receive path (PROTOCOL.md §4): RecordOpener, then decompression.
///
/// Input: `mode ‖ split ‖ bytes`. Mode bit 0: 0 the bytes are raw link input (headers,
/// ciphertext, tags as they come); 1 they describe records — `flags ‖ u16 length ‖ payload`
/// each — that are sealed with the fixed key first, so the fuzzer controls plaintext and
/// reaches decompression. Bit 1 picks the suite, bit 2 the smallest payload limit (so
/// length checks are reachable), bit 3 a rekey every 3 records (lockstep rekeying).
enum RecordFuzz {
    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let split = input.byte()
        let suite: AEADAlgorithm = mode & 2 == 0 ? .aes256gcm : .chacha20poly1305
        let limits = RecordLimits(maxPayload: mode & 4 == 0 ? RecordLimits.defaultMaxPayload : 1024,
                                  rekeyAfterRecords: mode & 8 == 0 ? 1 << 20 : 3)
        if mode & 1 == 0 {
            openRaw(input.rest(), suite: suite, limits: limits, split: split)
        } else {
            sealThenOpen(&input, suite: suite, limits: limits, split: split)
        }
    }

    static func opener(_ suite: AEADAlgorithm, _ limits: RecordLimits) -> RecordOpener {
        do { return try RecordOpener(algorithm: suite, key: FuzzKeys.recordKey, limits: limits) } catch {
            preconditionFailure("fixed record key refused: \(error)")
        }
    }

    static func openRaw(_ wire: [UInt8], suite: AEADAlgorithm, limits: RecordLimits, split: UInt8) {
        var opener = opener(suite, limits)
        var compressor = RecordCompressor(negotiated: true, scope: .all)
        var inbound = ByteBuffer()
        for piece in Chunker.pieces(of: wire, seed: split) {
            inbound.writeBytes(piece)
            while true {
                do throws(RecordError) {
                    let before = inbound.readableBytes
                    guard let record = try opener.open(&inbound) else { break }
                    invariant(record.payload.readableBytes <= limits.maxPayload, "opened \(record.payload.readableBytes) bytes")
                    invariant(before - inbound.readableBytes == RecordFormat.overhead + record.payload.readableBytes,
                              "consumed bytes do not match the record")
                    let payload = try compressor.decompress(record, limit: limits.maxPayload)
                    invariant(payload.readableBytes <= limits.maxPayload, "decompressed \(payload.readableBytes) bytes")
                } catch {
                    return
                }
            }
        }
    }

    /// One record to seal: its payload and whether to compress it (or flag it compressed raw).
    struct Plain {
        var payload: [UInt8]
        /// 0: as is; 1: through the compressor (flagged only if it shrank); 2: flagged raw.
        var compression: UInt8
    }

    static func sealThenOpen(_ input: inout FuzzInput, suite: AEADAlgorithm, limits: RecordLimits, split: UInt8) {
        var plains: [Plain] = []
        while !input.isEmpty {
            let flags = input.byte()
            let length = Int(input.integer(UInt16.self)) % (limits.maxPayload + 1)
            plains.append(Plain(payload: input.take(length), compression: flags % 3))
        }
        var sealer: RecordSealer
        do { sealer = try RecordSealer(algorithm: suite, key: FuzzKeys.recordKey, limits: limits, peerMaxPayload: limits.maxPayload) } catch {
            preconditionFailure("fixed record key refused: \(error)")
        }
        var sendCompressor = RecordCompressor(negotiated: true, scope: .all)
        var wire = ByteBuffer()
        var sentFlags: [UInt8] = []
        for plain in plains {
            let mark = sealer.beginRecord(in: &wire)
            let start = wire.writerIndex
            wire.writeBytes(plain.payload)
            var flags: UInt8 = 0
            if plain.compression == 1 {
                flags = sendCompressor.compressPayload(in: &wire, from: start, carriesPackets: false)
            } else if plain.compression == 2 {
                flags = RecordFormat.flagCompressed
            }
            do throws(RecordError) { try sealer.finishRecord(mark, flags: flags, in: &wire) } catch {
                preconditionFailure("sealing \(plain.payload.count) bytes failed: \(error)")
            }
            sentFlags.append(flags)
        }

        // Every record sealed must open, whatever the cuts, and give back its plaintext.
        var opener = opener(suite, limits)
        var receiveCompressor = RecordCompressor(negotiated: true, scope: .all)
        var inbound = ByteBuffer()
        var index = 0
        for piece in Chunker.pieces(of: Array(wire.readableBytesView), seed: split) {
            inbound.writeBytes(piece)
            while true {
                let record: RecordOpener.Opened
                do throws(RecordError) {
                    guard let opened = try opener.open(&inbound) else { break }
                    record = opened
                } catch {
                    fatalError("record \(index) of a sealed stream failed to open: \(error)")
                }
                invariant(index < plains.count, "more records opened than sealed")
                invariant(record.flags == sentFlags[index], "flags changed")
                do throws(RecordError) {
                    let payload = try receiveCompressor.decompress(record, limit: limits.maxPayload)
                    invariant(payload.readableBytes <= limits.maxPayload, "decompressed \(payload.readableBytes) bytes")
                    if plains[index].compression != 2 {
                        invariant(Array(payload.readableBytesView) == plains[index].payload, "record \(index) changed in transit")
                    }
                } catch {
                    // Only a raw payload flagged as compressed may fail to decompress.
                    invariant(plains[index].compression == 2, "record \(index) failed to decompress: \(error)")
                }
                index += 1
            }
        }
        invariant(index == plains.count, "\(plains.count) records sealed, \(index) opened")
        invariant((try? opener.finish(inbound)) != nil, "bytes left after the last record")
    }
}
