import NIOCore

extension SessionMachine {
    /// Frames to send on `link` as one record payload of at most `maxBytes`, or nil when
    /// there is nothing to send there. Call it while the link is writable.
    public mutating func nextPayload(for link: LinkID, maxBytes: Int) -> ByteBuffer? {
        guard var state = links[link] else { return nil }
        var out = ByteBuffer()
        out.reserveCapacity(min(maxBytes, 4096))
        // Control first: link-local, then shared, then acknowledgements.
        while let frame = state.control.first, fits(frame, in: out, maxBytes) {
            frame.encode(into: &out)
            state.control.removeFirst()
        }
        while let frame = sharedControl.first, fits(frame, in: out, maxBytes) {
            frame.encode(into: &out)
            sharedControl.removeFirst()
        }
        if sessionAckDue, out.readableBytes + 21 <= maxBytes {
            Frame.ack(id: 0, received: sessionReceivedNew, limit: sessionAdvertised).encode(into: &out)
            sessionAckDue = false
        }
        for id in acksDue.sorted() {
            guard out.readableBytes + 21 <= maxBytes else { break }
            if let stream = streams[id] {
                Frame.ack(id: id, received: stream.received, limit: stream.advertisedLimit).encode(into: &out)
            }
            acksDue.remove(id)
        }
        writeStreams(&state, into: &out, maxBytes: maxBytes)
        state.bytesOut += UInt64(out.readableBytes)
        links[link] = state
        return out.readableBytes > 0 ? out : nil
    }

    private func fits(_ frame: Frame, in out: ByteBuffer, _ maxBytes: Int) -> Bool {
        var probe = ByteBuffer()
        frame.encode(into: &probe)
        return out.readableBytes + probe.readableBytes <= maxBytes
    }

    /// Round-robin over the link's streams, a quantum each, until the record is full.
    private mutating func writeStreams(_ state: inout LinkState, into out: inout ByteBuffer, maxBytes: Int) {
        let quantum = 16 * 1024
        var idleStreams = 0
        while !state.streams.isEmpty, idleStreams < state.streams.count,
              out.readableBytes + Frame.dataHeaderSize < maxBytes {
            state.rotation %= state.streams.count
            let id = state.streams[state.rotation]
            state.rotation += 1
            let before = out.readableBytes
            writeStream(id, into: &out, maxBytes: min(maxBytes, out.readableBytes + quantum + Frame.dataHeaderSize))
            idleStreams = out.readableBytes == before ? idleStreams + 1 : 0
        }
    }

    private mutating func writeStream(_ id: UInt32, into out: inout ByteBuffer, maxBytes: Int) {
        guard var stream = streams[id] else { return }
        defer { streams[id] = stream }
        if stream.openPending, let target = stream.target {
            let open = Frame.open(id: id, window: stream.advertisedLimit, target: target)
            guard fits(open, in: out, maxBytes) else { return }
            open.encode(into: &out)
            stream.openPending = false
        }
        let room = maxBytes - out.readableBytes - Frame.dataHeaderSize
        let streamCredit = stream.sendLimit > stream.send.sent ? stream.sendLimit - stream.send.sent : 0
        // Resent bytes (below the highest offset ever sent) use no new session credit.
        let resend = stream.send.highestSent > stream.send.sent ? stream.send.highestSent - stream.send.sent : 0
        let sessionCredit = sessionSendLimit > sessionSentNew ? sessionSendLimit - sessionSentNew : 0
        let allowed = min(UInt64(max(room, 0)), streamCredit, resend + sessionCredit)
        let highestBefore = stream.send.highestSent
        if allowed > 0, let (offset, bytes) = stream.send.take(maxBytes: Int(allowed)) {
            Frame.writeDataHeader(id: id, offset: offset, length: bytes.readableBytes, into: &out)
            var payload = bytes
            out.writeBuffer(&payload)
            sessionSentNew += stream.send.highestSent - highestBefore
        }
        if stream.send.finPending, out.readableBytes + 13 <= maxBytes {
            Frame.fin(id: id, finalOffset: stream.send.written).encode(into: &out)
            stream.send.takeFin()
        }
    }
}
