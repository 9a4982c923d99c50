import NIOCore

extension SessionMachine {
    /// Frames to send on `link` as one record payload of at most `maxBytes`, or nil when
    /// there is nothing to send there.
    public mutating func nextPayload(for link: LinkID, maxBytes: Int) -> ByteBuffer? {
        var out = ByteBuffer()
        return writePayload(for: link, maxBytes: maxBytes, into: &out) > 0 ? out : nil
    }

    /// Appends frames for `link` to `out` (at most `maxBytes`, one record's payload) and
    /// returns how many bytes it wrote; 0 means nothing to send there. The runtime calls it
    /// right after `RecordSealer.beginRecord`, so frames are written where they are sealed.
    public mutating func writePayload(for link: LinkID, maxBytes: Int, into out: inout ByteBuffer) -> Int {
        var packetFrames = 0
        return writePayload(for: link, maxBytes: maxBytes, into: &out, packetFrames: &packetFrames)
    }

    /// `writePayload(for:maxBytes:into:)`, also counting the packet frames it wrote into
    /// `packetFrames`: records carrying TUN packets are compressed only with
    /// `compression = "all"` (PROTOCOL.md §4.2). With `oneStream` (the link compresses), the
    /// record carries data of at most one stream: bytes an attacker influences on one stream
    /// never share a compression window with another stream's secrets (CRIME/BREACH).
    public mutating func writePayload(for link: LinkID, maxBytes: Int, into out: inout ByteBuffer,
                                      packetFrames: inout Int, oneStream: Bool = false) -> Int {
        packetFrames = 0
        guard let index = links.index(forKey: link) else { return 0 }
        swap(&linkAtWork, &links.values[index])
        linkAtWorkID = link
        defer { swap(&linkAtWork, &links.values[index]) }
        // A retired link carries nothing after its `retire` frame.
        guard !linkAtWork.sentRetire else { return 0 }
        let retiring = linkAtWork.retireStarted != nil
        let start = out.writerIndex
        let limit = start + maxBytes
        // Control first: link-local, then shared, then acknowledgements.
        while let frame = linkAtWork.control.first, fits(frame, in: out, limit) {
            frame.encode(into: &out)
            linkAtWork.control.removeFirst()
        }
        let afterPings = out.writerIndex
        while !retiring, let frame = sharedControl.first, fits(frame, in: out, limit) {
            frame.encode(into: &out)
            sharedControl.removeFirst()
            // Confirmed once the peer answers a ping sent after it (`pingCounter` grows).
            linkAtWork.unconfirmed.append((frame, pingCounter))
        }
        // What arrived on this link, for the peer's striping scheduler (only when negotiated).
        if let flowIndex = linkFlows.index(forKey: link), linkFlows.values[flowIndex].reportDue,
           out.writerIndex + Self.linkReceivedFrameSize <= limit {
            Frame.linkReceived(linkFlows.values[flowIndex].dataIn).encode(into: &out)
            linkFlows.values[flowIndex].reportDue = false
        }
        if sessionAckDue, out.writerIndex + Self.ackFrameSize <= limit {
            sessionAdvertised = max(sessionAdvertised, sessionConsumed + config.sessionWindow)
            Frame.ack(id: 0, received: sessionReceivedNew, limit: sessionAdvertised).encode(into: &out)
            sessionAckDue = false
        }
        for id in acksDue.sorted() {
            guard out.writerIndex + Self.ackFrameSize <= limit else { break }
            if let stream = streams[id] {
                Frame.ack(id: id, received: stream.received, limit: stream.advertisedLimit).encode(into: &out)
            }
            acksDue.remove(id)
        }
        // Packets before stream data: they are latency-sensitive and their queue is small.
        let (moved, dropped) = linkAtWork.packets.move(into: &out, limit: limit, maxFrame: maxBytes)
        packetFrames += moved
        // Larger than any record the peer accepts: they can never be sent.
        packetsDropped += UInt64(dropped)
        writeStreams(into: &out, limit: limit, oneStream: oneStream)
        if retiring, linkAtWork.packets.isEmpty, linkAtWork.control.isEmpty, out.writerIndex + 1 <= limit {
            Frame.retire.encode(into: &out)
            linkAtWork.sentRetire = true
        }
        if out.writerIndex > afterPings { linkAtWork.wroteTraffic(keepaliveInterval: config.keepaliveInterval.nanoseconds) }
        let written = out.writerIndex - start
        linkAtWork.bytesOut += UInt64(written)
        return written
    }

    static let ackFrameSize = 21
    static let finFrameSize = 13
    static let linkReceivedFrameSize = 9

    private func fits(_ frame: Frame, in out: ByteBuffer, _ limit: Int) -> Bool {
        out.writerIndex + frame.encodedSize <= limit
    }

    /// Round-robin over `linkAtWork`'s streams and the striped streams homed elsewhere, a
    /// quantum each, until the record is full — or, with `oneStream`, the next stream that has
    /// something to send, as much as fits.
    private mutating func writeStreams(into out: inout ByteBuffer, limit: Int, oneStream: Bool) {
        // One 64 KiB frame per turn: fair between streams at record granularity, and a single
        // bulk stream costs one 17-byte frame header per record rather than one per 16 KiB.
        let quantum = 64 * 1024
        let pinned = linkAtWork.streams.count
        // Guests: a retiring link takes none (§5.6), nor one the peer cannot reorder for.
        let takesGuests = linkAtWork.retireStarted == nil && linkFlows[linkAtWorkID]?.striping == true
        let turns = pinned + (takesGuests ? stripeCandidates.count : 0)
        var idleStreams = 0
        while idleStreams < turns, out.writerIndex + Frame.dataHeaderSize < limit {
            linkAtWork.rotation %= turns
            let turn = linkAtWork.rotation
            linkAtWork.rotation += 1
            let id = turn < pinned ? linkAtWork.streams[turn] : stripeCandidates[turn - pinned]
            let before = out.writerIndex
            // A candidate homed here has its turn in `streams` already.
            if turn < pinned || streams[id]?.link != linkAtWorkID {
                writeStream(id, into: &out, limit: oneStream ? limit : min(limit, out.writerIndex + quantum + Frame.dataHeaderSize))
            }
            if oneStream, out.writerIndex != before { return }
            idleStreams = out.writerIndex == before ? idleStreams + 1 : 0
        }
    }

    private mutating func writeStream(_ id: UInt32, into out: inout ByteBuffer, limit: Int) {
        guard var stream = streams.removeValue(forKey: id) else { return }
        defer { streams[id] = stream }
        let link = linkAtWorkID
        let home = stream.link == link
        if home, stream.openPending, let target = stream.target {
            let open = Frame.open(id: id, window: stream.advertisedLimit, target: target)
            guard fits(open, in: out, limit) else { return }
            open.encode(into: &out)
            stream.openPending = false
        }
        guard mayCarry(stream, on: link) else { return }
        let room = limit - out.writerIndex - Frame.dataHeaderSize
        let streamCredit = stream.sendLimit > stream.send.sent ? stream.sendLimit - stream.send.sent : 0
        // Resent bytes (below the highest offset ever sent) use no new session credit.
        let resend = stream.send.highestSent > stream.send.sent ? stream.send.highestSent - stream.send.sent : 0
        let sessionCredit = sessionSendLimit > sessionSentNew ? sessionSendLimit - sessionSentNew : 0
        let allowed = min(UInt64(max(room, 0)), streamCredit, resend + sessionCredit)
        // Off its home link a stream goes in sizeable pieces (or its whole remainder): the
        // receiver holds fewer, larger out-of-order frames.
        if !home, allowed < UInt64(Self.minStripeChunk), allowed < UInt64(stream.send.unsent) { return }
        let highestBefore = stream.send.highestSent
        if allowed > 0, let (offset, bytes) = stream.send.take(maxBytes: Int(allowed)) {
            Frame.writeDataHeader(id: id, offset: offset, length: bytes.readableBytes, into: &out)
            var payload = bytes
            out.writeBuffer(&payload)
            sessionSentNew += stream.send.highestSent - highestBefore
            noteSent(&stream, on: link, offset: offset, count: bytes.readableBytes)
        }
        if stream.send.finPending, out.writerIndex + Self.finFrameSize <= limit {
            Frame.fin(id: id, finalOffset: stream.send.written).encode(into: &out)
            stream.send.takeFin()
        }
    }
}
