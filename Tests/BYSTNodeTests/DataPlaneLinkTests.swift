import BYSTProto
import Foundation
import Glibc
import NIOCore
import Testing
@testable import BYSTNode

/// A data plane link's socket and record I/O (DataPlaneLink.swift) over a real socket pair:
/// what it seals arrives whole and in order, a full socket keeps the rest for later, and
/// what the peer sends (or its closing) is read without blocking.
@Suite struct DataPlaneLinkTests {
    /// The peer's end of the link: seals what the plane link opens, and opens what it seals.
    var peerMachine: LinkMachine?

    /// Our end as a plane link (non-blocking, as NIO's sockets are) with the record layer of a
    /// real handshake, and the peer's socket; the peer's machine is `peerMachine`.
    private mutating func makeLink(peerMaxPayload: Int = RecordLimits.defaultMaxPayload, overTCP: Bool = false) throws -> (DataPlaneLink, Int32) {
        let psk = try PreSharedKey.generate()
        var ours = LinkMachine(initiator: LinkInitiator(psk: psk, hello: LinkHello(
            timestamp: Self.now, sessionID: [UInt8](repeating: 1, count: LinkHello.sessionIDSize), linkIndex: 0, features: [],
            maxRecordPayload: UInt32(RecordLimits.defaultMaxPayload), nodeName: "plane")))
        var theirs = LinkMachine(responder: LinkResponder(local: .init(nodeName: "peer", limits: RecordLimits(maxPayload: peerMaxPayload))))
        var message1 = ByteBuffer()
        try ours.start(into: &message1)
        let message2 = try Self.run(&theirs, message1, psk: psk)
        _ = try Self.run(&theirs, try Self.run(&ours, message2, psk: psk), psk: psk)  // the first record
        #expect(theirs.isEstablished)
        peerMachine = theirs
        let handedOff = ours.handOff()
        let records = try #require(handedOff)
        var fds: [Int32] = [-1, -1]
        if overTCP {
            let listener = try BlockingSocket.listen()
            defer { listener.close() }
            let peer = try BlockingSocket.connect(port: listener.localPort)
            guard let accepted = listener.accept() else { throw BlockingSocket.Failure(what: "accept", code: errno) }
            fds = [accepted.fd, peer.fd]
        } else if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) != 0 {
            throw BlockingSocket.Failure(what: "socketpair", code: errno)
        }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        return (DataPlaneLink(key: 2, fd: fds[0], machine: records, shared: DataPlaneLinkShared(now: 0), peerIndex: 0), fds[1])
    }

    static let now = UInt64(1_800_000_000) * 1_000_000_000

    /// Feeds `bytes` to a handshaking `machine`; returns what it writes back.
    private static func run(_ machine: inout LinkMachine, _ bytes: ByteBuffer, psk: PreSharedKey) throws -> ByteBuffer {
        var bytes = bytes
        machine.receive(&bytes)
        var filter = HandshakeReplayFilter()
        var output = ByteBuffer()
        while try machine.next(now: now, keys: { _ in psk }, replayFilter: &filter, into: &output) != nil {}
        return output
    }

    /// An IPv4 packet of `size` bytes whose bytes say which one it is.
    private func packet(_ number: UInt8, size: Int = 100) -> [UInt8] {
        var bytes = [UInt8](repeating: number, count: size)
        bytes[0] = 0x45
        return bytes
    }

    /// Reads what the peer end has (until `count` bytes, or nothing more comes within a second).
    private func readPeer(_ fd: Int32, atLeast count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while buffer.readableBytes < count {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 1000) == 1 else { break }
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { break }
            buffer.writeBytes(chunk[0..<n])
        }
        return buffer
    }

    /// Opens every record in `wire`: each payload's packets (empty for a payload of other frames).
    private mutating func openAll(_ wire: inout ByteBuffer) throws -> [(flags: UInt8, packets: [[UInt8]], payload: [UInt8])] {
        var records: [(UInt8, [[UInt8]], [UInt8])] = []
        peerMachine?.receive(&wire)
        while let record = try peerMachine?.openRecord() {
            let payload = Array(record.payload.readableBytesView)
            var packets: [[UInt8]] = []
            payload.withUnsafeBytes { bytes in
                if PacketRecord.packetCount(bytes) != nil { PacketRecord.forEachPacket(bytes) { frame, _, _ in packets.append(Array(frame)) } }
            }
            records.append((record.flags, packets, payload))
        }
        #expect(peerMachine?.unreadBytes == 0, "a record was cut short")
        return records
    }

    @Test mutating func packetsShareRecordsInOrderAndAPayloadFromTheLoopFollowsThem() throws {
        let (link, peer) = try makeLink(peerMaxPayload: 1024)
        defer { Glibc.close(peer) }
        for number in 1...25 as ClosedRange<UInt8> {
            #expect(packet(number).withUnsafeBytes { link.appendPacket($0, offloadHeader: nil) })
        }
        // A record laid out on the loop is sealed where it lies, and sent after the packets.
        var control = ByteBuffer()
        Frame.ping(7).encode(into: &control)
        var fromLoop = LaidOutRecords(capacity: 256)
        let header = fromLoop.beginRecord()
        fromLoop.buffer.writeImmutableBuffer(control)
        fromLoop.finishRecord(at: header, flags: 0)
        try link.seal(&fromLoop)
        // Packets after it go out after it.
        for number in 26...27 as ClosedRange<UInt8> {
            #expect(packet(number).withUnsafeBytes { link.appendPacket($0, offloadHeader: nil) })
        }
        guard case .done = link.flush() else { Issue.record("the flush did not complete"); return }
        #expect(link.shared.recordsSealed.load(ordering: .relaxed) == 5)
        #expect(link.unsentBytes == 0)

        var wire = readPeer(peer, atLeast: Int(link.shared.bytesOut.load(ordering: .relaxed)))
        #expect(wire.readableBytes == Int(link.shared.bytesOut.load(ordering: .relaxed)))
        let records = try openAll(&wire)
        // 103 bytes per packet frame: nine fit in a payload of 1024 bytes.
        #expect(records.map(\.packets.count) == [9, 9, 7, 0, 2])
        #expect(records.flatMap(\.packets) == (1...27).map { packet($0) })
        #expect(records[3].payload == Array(control.readableBytesView))
    }

    @Test mutating func aFrameLargerThanThePeerAcceptsIsRefused() throws {
        let (link, peer) = try makeLink(peerMaxPayload: 1024)
        defer { Glibc.close(peer) }
        #expect(!packet(1, size: 1022).withUnsafeBytes { link.appendPacket($0, offloadHeader: nil) })
        #expect(packet(1, size: 1021).withUnsafeBytes { link.appendPacket($0, offloadHeader: nil) })
    }

    @Test mutating func aFullSocketKeepsTheRestUntilThereIsRoomAndNothingIsLost() throws {
        let (link, peer) = try makeLink()
        defer { Glibc.close(peer) }
        // The peer reads nothing: the socket fills within a few MiB.
        var sent = 0
        var waiting = false
        while !waiting, sent < 4096 {
            sent += 1
            #expect(packet(UInt8(truncatingIfNeeded: sent), size: 1400).withUnsafeBytes { link.appendPacket($0, offloadHeader: nil) })
            if sent % 16 == 0, case .waiting = link.flush() { waiting = true }
        }
        #expect(waiting, "the socket never filled")
        #expect(link.outbound.readableBytes > 0)
        var wire = ByteBuffer()
        var flushed = false
        for _ in 0..<1000 where !flushed {
            var chunk = readPeer(peer, atLeast: 1)
            wire.writeBuffer(&chunk)
            if case .done = link.flush() { flushed = true }
        }
        #expect(flushed)
        var rest = readPeer(peer, atLeast: Int(link.shared.bytesOut.load(ordering: .relaxed)) - wire.readableBytes)
        wire.writeBuffer(&rest)
        let packets = try openAll(&wire).flatMap(\.packets)
        #expect(packets.count == sent)
        #expect(packets.map { $0[1] } == (1...sent).map { UInt8(truncatingIfNeeded: $0) })
    }

    /// After a read the link's socket acknowledges at once (QuickAck.swift): it leaves the
    /// delayed-ACK mode Linux puts a connection with data both ways in, which would hold a
    /// Nagle-ing relay's next small write (tinyproxy) up to 40 ms.
    @Test mutating func aReadLeavesDelayedAckMode() throws {
        let (link, peer) = try makeLink(overTCP: true)
        defer { Glibc.close(peer) }
        var mode: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        // The kernel's delayed-ACK timer (≥ 40 ms) also ends interactive mode: an attempt
        // where it fired before the read proves nothing and is made again.
        for _ in 0..<5 {
            mode = 0
            #expect(setsockopt(link.fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &mode, size) == 0)  // interactive: ACKs delayed
            let ping: [UInt8] = [1, 2, 3]
            #expect(send(peer, ping, ping.count, 0) == ping.count)
            var poller = pollfd(fd: link.fd, events: Int16(POLLIN), revents: 0)
            #expect(poll(&poller, 1, 1000) == 1)
            #expect(getsockopt(link.fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &mode, &size) == 0)
            let stillInteractive = mode == 0
            guard case .drained = link.readSocket(limit: 1 << 20) else { Issue.record("expected the socket drained"); return }
            guard stillInteractive else { continue }
            #expect(getsockopt(link.fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &mode, &size) == 0 && mode == 1)
            return
        }
        Issue.record("the delayed-ACK timer fired before every read: nothing shown")
    }

    @Test mutating func readsWhatThePeerSendsWithoutBlockingThenSeesItClose() throws {
        let (link, peer) = try makeLink()
        var wire = ByteBuffer()
        for number in 1...3 as ClosedRange<UInt8> {
            var payload = ByteBuffer()
            packet(number).withUnsafeBytes { PacketQueue.writeFrame($0, offloadHeader: nil, into: &payload) }
            try peerMachine?.seal(payload, flags: 0, into: &wire)
        }
        let bytes = Array(wire.readableBytesView)
        #expect(send(peer, bytes, bytes.count, 0) == bytes.count)
        guard case .drained = link.readSocket(limit: 1 << 20) else { Issue.record("expected the socket drained"); return }
        #expect(link.machine.unreadBytes == bytes.count)
        #expect(link.shared.bytesIn.load(ordering: .relaxed) == UInt64(bytes.count))
        var opened = 0
        while let record = try link.machine.openRecord() {
            opened += 1
            record.payload.withUnsafeReadableBytes { #expect(PacketRecord.packetCount($0) == 1) }
        }
        #expect(opened == 3)
        Glibc.close(peer)
        guard case .closed(let reason) = link.readSocket(limit: 1 << 20) else { Issue.record("the close went unseen"); return }
        #expect(reason.contains("closed by the remote end"))
    }
}
