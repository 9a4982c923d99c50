@testable import BYSTProto
import NIOCore

/// The link handshake from both ends (PROTOCOL.md §3), then the first records.
///
/// Input: `mode ‖ split ‖ bytes`. Mode (low 2 bits) picks what the bytes are:
///   0 raw bytes to a responder (message 1, then records);
///   1 the hello payload inside a valid message 1 under a configured PSK (reaches hello
///     parsing, the timestamp window and the replay filter);
///   2 raw bytes to an initiator that sent message 1 (message 2, then records);
///   3 the hello payload inside a valid message 2.
/// Bit 2 picks the suite. `split` chooses where the bytes are cut.
enum LinkFuzz {
    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let split = input.byte()
        let suite: AEADAlgorithm = mode & 4 == 0 ? .aes256gcm : .chacha20poly1305
        switch mode & 3 {
        case 0: respond(to: input.rest(), split: split)
        case 1: message1(hello: input.rest(), suite: suite).map { respond(to: $0, split: split) }
        case 2: initiate(suite: suite, reply: { _ in input.rest() }, split: split)
        default: initiate(suite: suite, reply: { message2(for: $0, hello: input.rest(), suite: suite) }, split: split)
        }
    }

    static let hubLocal = LinkResponder.Local(nodeName: "hub", features: [.compression, .gsoPackets])

    static let branchHello = LinkHello(
        timestamp: FuzzKeys.now, sessionID: Array(repeating: 0xA5, count: LinkHello.sessionIDSize), linkIndex: 1,
        features: [.compression, .gsoPackets], maxRecordPayload: UInt32(RecordLimits.defaultMaxPayload), nodeName: "branch-1")

    // MARK: Responder

    static func respond(to wire: [UInt8], split: UInt8) {
        var filter = HandshakeReplayFilter()
        guard var link = respondOnce(to: wire, split: split, filter: &filter) else { return }
        // The same message 1 again is a replay, whatever the cuts.
        var again = LinkResponder(local: hubLocal, testingOnlyEphemeral: FuzzKeys.responderEphemeral)
        var inbound = ByteBuffer(bytes: wire)
        var out = ByteBuffer()
        do {
            _ = try again.receive(&inbound, now: FuzzKeys.now, keys: FuzzKeys.lookup, replayFilter: &filter, into: &out)
            invariant(false, "a replayed message 1 was accepted")
        } catch {
            invariant(error == .replayed, "replay refused as \(error)")
        }
        link.inbound.discardReadBytes()
        openRecords(&link)
    }

    struct Established {
        var link: LinkEstablished
        var inbound: ByteBuffer
    }

    private static func respondOnce(to wire: [UInt8], split: UInt8, filter: inout HandshakeReplayFilter) -> Established? {
        var responder = LinkResponder(local: hubLocal, testingOnlyEphemeral: FuzzKeys.responderEphemeral)
        var inbound = ByteBuffer()
        var out = ByteBuffer()
        for piece in Chunker.pieces(of: wire, seed: split) {
            inbound.writeBytes(piece)
            let before = inbound.readerIndex
            let established: LinkEstablished?
            do throws(HandshakeError) {
                established = try responder.receive(&inbound, now: FuzzKeys.now, keys: FuzzKeys.lookup,
                                                    replayFilter: &filter, into: &out)
            } catch {
                return nil
            }
            guard let established else {
                invariant(inbound.readerIndex == before && out.readableBytes == 0, "incomplete message 1 consumed or answered")
                continue
            }
            invariant(out.readableBytes > LinkWire.lengthSize, "no message 2 written")
            check(established, keyIDs: [FuzzKeys.psk.id, FuzzKeys.otherPSK.id])
            return Established(link: established, inbound: inbound)
        }
        invariant((try? responder.finish()) == nil, "an unfinished handshake finished")
        return nil
    }

    /// Message 1 around a fuzzed hello, under the fixed PSK and ephemeral.
    static func message1(hello: [UInt8], suite: AEADAlgorithm) -> [UInt8]? {
        let header = LinkWire.magic + [LinkWire.version, suite.rawValue] + FuzzKeys.psk.id.bytes
        do throws(NoiseError) {
            var noise = try HandshakeState(
                protocol: LinkWire.noiseProtocol(for: suite), initiator: true, prologue: LinkWire.prologue(header: header),
                localStatic: nil, remoteStatic: nil, psks: [FuzzKeys.psk.secret], testingOnlyEphemeral: FuzzKeys.initiatorEphemeral)
            let message = try noise.writeMessage(payload: Array(hello.prefix(LinkWire.maxNoiseMessage)))
            return header + [UInt8(truncatingIfNeeded: message.count >> 8), UInt8(truncatingIfNeeded: message.count)] + message
        } catch {
            return nil
        }
    }

    // MARK: Initiator

    /// Message 1 from an initiator with the fixed keys; `reply` makes the bytes that come back.
    static func initiate(suite: AEADAlgorithm, reply: ([UInt8]) -> [UInt8]?, split: UInt8) {
        var initiator = LinkInitiator(psk: FuzzKeys.psk, suite: suite, hello: branchHello, limits: RecordLimits(),
                                      testingOnlyEphemeral: FuzzKeys.initiatorEphemeral)
        var sent = ByteBuffer()
        do throws(HandshakeError) { try initiator.start(into: &sent) } catch {
            preconditionFailure("fixed message 1 failed: \(error)")
        }
        guard let wire = reply(Array(sent.readableBytesView)) else { return }
        var inbound = ByteBuffer()
        for piece in Chunker.pieces(of: wire, seed: split) {
            inbound.writeBytes(piece)
            let before = inbound.readerIndex
            let established: LinkEstablished?
            do throws(HandshakeError) { established = try initiator.receive(&inbound) } catch { return }
            guard let established else {
                invariant(inbound.readerIndex == before, "incomplete message 2 consumed")
                continue
            }
            check(established, keyIDs: [FuzzKeys.psk.id])
            invariant(established.peerHello.sessionID == branchHello.sessionID, "session id not echoed")
            var link = Established(link: established, inbound: inbound)
            link.inbound.discardReadBytes()
            return openRecords(&link)
        }
        invariant((try? initiator.finish()) == nil, "an unfinished handshake finished")
    }

    /// Message 2 around a fuzzed hello: what a responder with the fixed keys would send.
    static func message2(for message1: [UInt8], hello: [UInt8], suite: AEADAlgorithm) -> [UInt8]? {
        let header = Array(message1.prefix(LinkWire.initiationHeaderSize))
        let body = Array(message1.dropFirst(LinkWire.initiationHeaderSize + LinkWire.lengthSize))
        do throws(NoiseError) {
            var noise = try HandshakeState(
                protocol: LinkWire.noiseProtocol(for: suite), initiator: false, prologue: LinkWire.prologue(header: header),
                localStatic: nil, remoteStatic: nil, psks: [FuzzKeys.psk.secret], testingOnlyEphemeral: FuzzKeys.responderEphemeral)
            _ = try noise.readMessage(body)
            let message = try noise.writeMessage(payload: Array(hello.prefix(LinkWire.maxNoiseMessage)))
            return [UInt8(truncatingIfNeeded: message.count >> 8), UInt8(truncatingIfNeeded: message.count)] + message
        } catch {
            return nil
        }
    }

    // MARK: Both

    static func check(_ link: LinkEstablished, keyIDs: [KeyID]) {
        let hello = link.peerHello
        invariant(keyIDs.contains(link.keyID), "established under an unknown key")
        invariant(LinkHello.isValidNodeName(hello.nodeName), "node name of \(hello.nodeName.utf8.count) bytes")
        invariant((1024...UInt32(RecordLimits.upperMaxPayload)).contains(hello.maxRecordPayload),
                  "max record payload \(hello.maxRecordPayload)")
        invariant(hello.sessionID.count == LinkHello.sessionIDSize, "session id of \(hello.sessionID.count) bytes")
    }

    /// Whatever followed the handshake, through the record layer as a link would.
    static func openRecords(_ link: inout Established) {
        var compressor = RecordCompressor(negotiated: link.link.features.contains(.compression), scope: .all)
        let limit = link.link.opener.limits.maxPayload
        while true {
            do throws(RecordError) {
                guard let record = try link.link.opener.open(&link.inbound) else { return }
                let payload = try compressor.decompress(record, limit: limit)
                invariant(payload.readableBytes <= limit, "payload of \(payload.readableBytes) bytes over \(limit)")
            } catch {
                return
            }
        }
    }
}
