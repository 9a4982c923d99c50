import BYSTProto
import Glibc
import NIOCore

/// One established plain link as the data plane owns it: the socket (a duplicate of the
/// channel's descriptor, which NIO no longer has), the link's record layer (opener, sealer and
/// the bytes not yet opened, in the machine `LinkMachine.handOff` made), and the sealed bytes on
/// their way out. Used on the plane's thread only, after `adopt`.
final class DataPlaneLink {
    /// How a close by the remote end reads (LinkHandler.planeClosed tells the registry so).
    static let closedByRemoteReason = "connection closed by the remote end"
    static let resetByRemoteReason = "(reset by the remote end)"

    static func socketError(_ code: Int32) -> String {
        let remote = [ECONNRESET, EPIPE, ECONNABORTED].contains(code) ? " " + resetByRemoteReason : ""
        return "socket error: \(String(cString: strerror(code)))\(remote)"
    }

    let key: UInt64
    let fd: Int32
    var machine: LinkMachine
    /// The largest record payload the peer accepts.
    var peerMaxPayload: Int { machine.peerMaxPayload }
    /// Sealed bytes the kernel has not taken yet: the event loop's records in the buffers
    /// it laid them out in (`ahead`, oldest first), then `outbound`, where packets from the TUN
    /// are sealed. Sent in that order, which is the order they were sealed in.
    var ahead = CircularBuffer<ByteBuffer>()
    var outbound = ByteBuffer()
    var unsentBytes: Int { ahead.reduce(outbound.readableBytes) { $0 + $1.readableBytes } }
    /// A record being filled with packets from the TUN, sealed at the next flush.
    var openRecord: RecordSealer.Mark?
    let shared: DataPlaneLinkShared
    /// The peer (index into the plane's router) whose sources the link's packets must come
    /// from; `PacketRouter.noPeer` once no published peer lists the link.
    var peerIndex: Int
    /// The link negotiated `sequencedPackets`: sequenced packet frames are read here; on any
    /// other link a record with one goes to the loop, whose session refuses it.
    var sequencedPackets = false
    /// Waiting for EPOLLOUT: the kernel took only part of `outbound`.
    var waitingForRoom = false
    /// Close once `outbound` is written (a retired link).
    var closeWhenFlushed = false

    init(key: UInt64, fd: Int32, machine: LinkMachine, shared: DataPlaneLinkShared, peerIndex: Int) {
        self.key = key
        self.fd = fd
        self.machine = machine
        self.shared = shared
        self.peerIndex = peerIndex
    }

    deinit { close(fd) }

    enum ReadResult {
        case more, drained, closed(String)
    }

    /// Reads what the socket has, up to `limit` bytes, into the machine's inbound buffer.
    func readSocket(limit: Int) -> ReadResult {
        var total = 0
        defer { if total > 0 { QuickAck.request(fd: fd) } }
        while total < limit {
            var space = 0
            let count = machine.readInbound(reserving: 64 * 1024) { buffer in
                space = buffer.count
                return recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            }
            if count > 0 {
                total += count
                shared.bytesIn.add(UInt64(count), ordering: .relaxed)
                // Less than there was room for: the socket had no more (epoll is level-
                // triggered, so anything that arrives meanwhile wakes the plane again). Saves
                // a read that would only say EAGAIN, on every light-traffic packet.
                if count < space { return .drained }
                continue
            }
            if count == 0 { return .closed(Self.closedByRemoteReason) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .drained
            default: return .closed(Self.socketError(errno))
            }
        }
        return .more
    }

    /// Why sealing failed (the plane then closes the link).
    var sealFailure: LinkMachine.Failure?

    /// Adds `packet` to the record being filled (a new one when it would not fit), numbered
    /// `sequence` when striped. False if the frame can never fit a record the peer accepts,
    /// or sealing failed (`sealFailure`).
    func appendPacket(_ packet: UnsafeRawBufferPointer, offloadHeader: VirtioNetHeader?, sequence: UInt64? = nil) -> Bool {
        let size = PacketQueue.frameSize(packetBytes: packet.count, offload: offloadHeader != nil, sequenced: sequence != nil)
        guard size <= peerMaxPayload, sealFailure == nil else { return false }
        if let mark = openRecord, machine.payloadLength(since: mark, in: outbound) + size > peerMaxPayload {
            do throws(LinkMachine.Failure) { try sealOpenRecord() } catch {
                sealFailure = error
                return false
            }
        }
        if openRecord == nil { openRecord = machine.beginRecord(in: &outbound) }
        guard openRecord != nil else { return false }
        PacketQueue.writeFrame(packet, offloadHeader: offloadHeader, sequence: sequence, into: &outbound)
        return true
    }

    func sealOpenRecord() throws(LinkMachine.Failure) {
        guard let mark = openRecord else { return }
        openRecord = nil
        try machine.finishRecord(mark, carriesPackets: true, in: &outbound)
        shared.recordsSealed.add(1, ordering: .relaxed)
    }

    /// Records the session made on the loop (compressed there as configured): sealed where
    /// they lie and sent from the loop's buffer, after what was sealed before them.
    func seal(_ records: inout LaidOutRecords) throws(LinkMachine.Failure) {
        try sealOpenRecord()
        try machine.seal(&records)
        shared.recordsSealed.add(UInt64(records.spans.count), ordering: .relaxed)
        if outbound.readableBytes > 0 {
            ahead.append(outbound)
            outbound = ByteBuffer()
        }
        // Shared with the caller's value until it is dropped: sending only moves our reader index.
        ahead.append(records.buffer)
    }

    enum WriteResult {
        case done, waiting, failed(String)
    }

    /// Seals the open record and gives the kernel what it takes, `ahead` first.
    func flush() -> WriteResult {
        do throws(LinkMachine.Failure) { try sealOpenRecord() } catch { return .failed("sealing: \(error)") }
        while !ahead.isEmpty {
            if let failed = send(&ahead[ahead.startIndex]) { return failed }
            ahead.removeFirst()
        }
        if let failed = send(&outbound) { return failed }
        // Drained: start again at the front of the storage. Bulk traffic fills it to about
        // the high-water mark and a read of the TUN beyond (DataPlane.tunByteBudget); only a
        // buffer larger than that is let go.
        if outbound.capacity > 2 << 20 { outbound = ByteBuffer() } else { outbound.clear() }
        return .done
    }

    /// Sends what the kernel takes of `buffer`; nil once all of it is sent.
    private func send(_ buffer: inout ByteBuffer) -> WriteResult? {
        while buffer.readableBytes > 0 {
            let sent = buffer.withUnsafeReadableBytes { bytes in
                Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                buffer.moveReaderIndex(forwardBy: sent)
                shared.bytesOut.add(UInt64(sent), ordering: .relaxed)
                continue
            }
            if sent < 0, errno == EINTR { continue }
            if sent < 0, errno == EAGAIN || errno == EWOULDBLOCK { return .waiting }
            return .failed(Self.socketError(errno))
        }
        return nil
    }
}

/// Records laid out on the event loop, on their way to the plane that seals them. A box: the
/// command carrying it is copied on its way (the inbox, the loop over it), but the buffer
/// inside stays referenced once, so sealing it in place copies nothing.
final class PlaneRecords: @unchecked Sendable {
    // @unchecked: filled on the loop, then used on the plane only.
    var records: LaidOutRecords

    init(_ records: consuming LaidOutRecords) { self.records = records }
}
