@testable import BYSTProto
import NIOCore

/// Session frames and the session machine's receive path (PROTOCOL.md §5), driven by a
/// small program the fuzzer writes: `role ‖ op*`, each op one byte then its operands.
///
///   receive (4 of 16 op values): link, u16 length, payload — one opened record's payload
///   link up / down / retire, poll after a delay, write a record for a link,
///   open / send / finish / reset / consume a stream, queue a packet
///
/// A receive that throws ends the program, as the runtime closes the session then.
/// Invariants: every frame decoded re-encodes to itself; what the machine writes decodes;
/// buffered send bytes add up; streams stay within `maxStreams`.
enum SessionFuzz {
    static let config: SessionConfig = {
        var config = SessionConfig()
        // Small caps, so that the fuzzer reaches them within a few kilobytes.
        config.maxStreams = 8
        config.sendBufferLimit = 2048
        config.sessionSendBufferLimit = 6144
        config.packetQueueBytes = 4096
        return config
    }()

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let role: SessionMachine.Role = input.byte() & 1 == 0 ? .initiator : .responder
        var now: Nanoseconds = 1_000_000_000
        var machine = SessionMachine(role: role, config: config, now: now, instance: 0x1234_5678)
        var opened: [UInt32] = []
        // Delivered bytes the "application" has not consumed yet: it never consumes more.
        var unconsumed: [UInt32: Int] = [:]
        while !input.isEmpty {
            let op = input.byte() % 16
            let link = LinkID(Int(input.byte() % 3))
            switch op {
            case 0...3:
                let payload = input.take(Int(input.integer(UInt16.self) % 4096))
                checkFrames(payload)
                if !machine.links.keys.contains(link) { machine.linkUp(link, now: now) }
                let events: [SessionEvent]
                do throws(SessionError) { events = try machine.receive(ByteBuffer(bytes: payload), from: link, now: now) } catch {
                    return
                }
                check(events, &unconsumed)
            case 4: machine.linkUp(link, now: now, closeReasons: true)
            case 5: machine.linkDown(link, now: now)
            case 6: machine.retireLink(link, now: now)
            case 7:
                now += UInt64(input.integer(UInt16.self)) * 1_000_000
                check(machine.poll(now: now), &unconsumed)
            case 8:
                let maxBytes = 32 + Int(input.integer(UInt16.self) % 8192)
                if let payload = machine.nextPayload(for: link, maxBytes: maxBytes) {
                    invariant(payload.readableBytes <= maxBytes, "wrote \(payload.readableBytes) bytes into \(maxBytes)")
                    checkFrames(Array(payload.readableBytesView), mustDecode: true)
                }
            case 9:
                let target = String(decoding: input.take(Int(input.byte() % 32)), as: UTF8.self)
                if let id = machine.openStream(target: target) { opened.append(id) }
            case 10:
                var bytes = ByteBuffer(bytes: input.take(Int(input.integer(UInt16.self) % 4096)))
                _ = machine.send(&bytes, on: pick(opened, &input))
                check(machine.pendingEvents(), &unconsumed)
            case 11: machine.finish(pick(opened, &input))
            case 12: machine.reset(pick(opened, &input), code: .cancelled)
            case 13:
                let waiting = unconsumed.keys.sorted()
                guard !waiting.isEmpty else { break }
                let id = waiting[Int(input.byte()) % waiting.count]
                let count = min(Int(input.integer(UInt16.self)), unconsumed[id] ?? 0)
                unconsumed[id, default: 0] -= count
                machine.consumed(count, on: id)
            case 14:
                let packet = input.take(Int(input.integer(UInt16.self) % 2048))
                packet.withUnsafeBytes { _ = machine.sendPacket($0, flowHash: UInt64(input.byte())) }
            default: machine.goAway()
            }
            checkState(machine)
        }
    }

    /// A stream id the fuzzer picks: one we opened, or any small id.
    private static func pick(_ opened: [UInt32], _ input: inout FuzzInput) -> UInt32 {
        let choice = Int(input.byte())
        return choice < opened.count ? opened[choice] : UInt32(choice)
    }

    /// Frame.decode over a payload: each frame re-encodes to one that decodes equal.
    static func checkFrames(_ payload: [UInt8], mustDecode: Bool = false) {
        checkPacketRecord(payload)
        var buffer = ByteBuffer(bytes: payload)
        while true {
            let frame: Frame
            do throws(FrameError) {
                guard let decoded = try Frame.decode(from: &buffer) else { return }
                frame = decoded
            } catch {
                invariant(!mustDecode, "a payload we wrote does not decode: \(error)")
                return
            }
            var encoded = ByteBuffer()
            frame.encode(into: &encoded)
            let again = try? Frame.decode(from: &encoded)
            invariant(again == frame, "frame \(frame) re-encodes to \(String(describing: again))")
            invariant(encoded.readableBytes == 0, "re-encoded \(frame) has trailing bytes")
        }
    }

    /// The runtime's fast path (`PacketRecord`) takes a payload exactly when it decodes to
    /// packet frames only (sequenced ones included), and hands out the same bytes and sequence
    /// numbers `Frame.decode` does.
    static func checkPacketRecord(_ payload: [UInt8]) {
        var buffer = ByteBuffer(bytes: payload)
        var decoded: [(bytes: [UInt8], offloaded: Bool, sequence: UInt64?)] = []
        var onlyPackets = true
        while onlyPackets {
            do throws(FrameError) {
                guard let frame = try Frame.decode(from: &buffer) else { break }
                switch frame {
                case .packet(let bytes): decoded.append((Array(bytes.readableBytesView), false, nil))
                case .offloadPacket(let bytes): decoded.append((Array(bytes.readableBytesView), true, nil))
                case .sequencedPacket(let seq, let bytes): decoded.append((Array(bytes.readableBytesView), false, seq))
                case .sequencedOffloadPacket(let seq, let bytes): decoded.append((Array(bytes.readableBytesView), true, seq))
                default: onlyPackets = false
                }
            } catch {
                onlyPackets = false
            }
        }
        if decoded.isEmpty { onlyPackets = false }
        payload.withUnsafeBytes { bytes in
            let count = PacketRecord.packetCount(bytes)
            invariant((count != nil) == onlyPackets, "PacketRecord took \(String(describing: count)) frames; decode says only packets: \(onlyPackets)")
            guard count != nil else { return }
            var seen: [(bytes: [UInt8], offloaded: Bool, sequence: UInt64?)] = []
            PacketRecord.forEachPacket(bytes) { seen.append((Array($0), $1, $2)) }
            invariant(seen.count == count && seen.elementsEqual(decoded, by: { $0.bytes == $1.bytes && $0.offloaded == $1.offloaded && $0.sequence == $1.sequence }),
                      "PacketRecord's packets differ from the decoded frames")
        }
    }

    static func check(_ events: [SessionEvent], _ unconsumed: inout [UInt32: Int]) {
        for event in events {
            switch event {
            case .streamData(let id, let bytes):
                invariant(bytes.readableBytes > 0, "empty stream data delivered")
                unconsumed[id, default: 0] += bytes.readableBytes
            case .streamReset(let id, _), .streamClosed(let id):
                // The runtime drops the stream's socket: nothing more is consumed on this id.
                unconsumed[id] = nil
            case .streamOpened(_, let target): invariant(target.utf8.count <= Frame.maxTargetBytes, "long target")
            case .packet(let bytes): invariant(bytes.readableBytes <= Frame.maxPacketSize, "oversized packet")
            case .offloadPacket(let bytes):
                invariant(bytes.readableBytes >= Frame.offloadHeaderSize, "offload packet without its header")
            default: break
            }
        }
    }

    static func checkState(_ machine: SessionMachine) {
        invariant(machine.sessionBuffered == machine.bufferedSendBytes,
                  "session buffer count \(machine.sessionBuffered) != \(machine.bufferedSendBytes) buffered")
        invariant(machine.sessionBuffered <= config.sessionSendBufferLimit, "session send buffer over its limit")
        invariant(machine.streamCount <= config.maxStreams, "\(machine.streamCount) streams")
        invariant(machine.closed.count <= 8192, "\(machine.closed.count) closed streams remembered")
    }
}
