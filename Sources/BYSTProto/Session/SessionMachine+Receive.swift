import NIOCore

extension SessionMachine {
    /// Feeds one opened record payload that arrived on `link`.
    public mutating func receive(_ payload: ByteBuffer, from link: LinkID, now: Nanoseconds) throws(SessionError) -> [SessionEvent] {
        var payload = payload
        clock = max(clock, now)
        noteReceived(payloadBytes: payload.readableBytes, on: link, now: now)
        var traffic = false
        while true {
            let frame: Frame?
            do throws(FrameError) { frame = try Frame.decode(from: &payload) } catch { throw .frame(error) }
            guard let frame else { break }
            if !frame.isLinkUpkeep { traffic = true }
            try handle(frame, from: link, now: now)
        }
        if traffic, let index = links.index(forKey: link) {
            let deadLink = deadLinkNanoseconds
            links.values[index].noteArrivedTraffic(now: now, deadLink: deadLink)
        }
        return takeEvents()
    }

    /// A record payload of `payloadBytes` arrived on `link`: the link is alive. `receive`
    /// does this itself; the runtime calls it for records it reads as a `PacketRecord`
    /// (`traffic`: they carried packets).
    public mutating func noteReceived(payloadBytes: Int, on link: LinkID, now: Nanoseconds, traffic: Bool = false) {
        // In place through the index: `links[link]?.x = …` runs a modify coroutine whose
        // frame (LinkState is large) is allocated on the heap, once per record.
        guard let index = links.index(forKey: link) else { return }
        let deadLink = deadLinkNanoseconds
        links.values[index].lastReceived = now
        links.values[index].bytesIn += UInt64(payloadBytes)
        if traffic {
            clock = max(clock, now)
            links.values[index].noteArrivedTraffic(now: now, deadLink: deadLink)
        }
    }

    private func isPeerStreamID(_ id: UInt32) -> Bool {
        (id % 2 == 1) == (role == .responder)
    }

    private mutating func handle(_ frame: Frame, from link: LinkID, now: Nanoseconds) throws(SessionError) {
        switch frame {
        case .open(let id, let window, let target):
            guard id != 0, isPeerStreamID(id) else { throw .badStreamID(id) }
            // A resent open (its first copy arrived before its link died) is already known.
            // Opens may arrive out of id order when they travel on different links.
            guard streams[id] == nil, closed[id] == nil else { return }
            highestPeerStreamID = max(highestPeerStreamID, id)
            guard streams.count < config.maxStreams else {
                // Each refusal queues a reset: bounded like `answerClosed`'s replies.
                guard sharedControl.count < Self.maxQueuedControlFrames else { throw .badStreamID(id) }
                rememberClosed(id, .reset(.tooManyStreams))
                sharedControl.append(.reset(id: id, code: .tooManyStreams))
                events.append(.limitReached(.streams))
                return
            }
            streams[id] = StreamState(id: id, link: link, target: nil, sendLimit: window,
                                      receiveWindow: config.streamWindow)
            links[link]?.streams.append(id)
            acksDue.insert(id)
            events.append(.streamOpened(id: id, target: target))
        case .data(let id, let offset, let bytes):
            // In place: no copy of the flow, no coroutine frame.
            if let index = linkFlows.index(forKey: link) { linkFlows.values[index].arrived(bytes.readableBytes) }
            try receiveData(id: id, offset: offset, bytes: bytes)
        case .ack(let id, let received, let limit):
            if id == 0 {
                sessionSendLimit = max(sessionSendLimit, limit)
            } else {
                acknowledge(id: id, received: received, limit: limit, now: now)
            }
        case .fin(let id, let finalOffset):
            try receiveFin(id: id, finalOffset: finalOffset)
        case .reset(let id, let code):
            guard streams[id] != nil else { return }
            removeStream(id, as: .reset(code))
            events.append(.streamReset(id: id, code: code))
        case .ping(let value):
            // Only the newest ping needs an answer: a flood of pings queues one pong.
            links[link]?.control.removeAll { if case .pong = $0 { true } else { false } }
            links[link]?.control.append(.pong(value))
        case .pong(let value):
            if let outstanding = links[link]?.outstandingPing, outstanding.value == value {
                links[link]?.recordRTT(now - outstanding.sentAt)
                linkFlows[link]?.smoothedRTT = links[link]?.smoothedRTT
                events.append(.rttMeasured(link: link, rtt: .nanoseconds(Int64(clamping: now - outstanding.sentAt))))
                links[link]?.outstandingPing = nil
                // Everything written before that ping is confirmed; nothing was written after it.
                if links[link]?.wroteSincePing == false { links[link]?.writesUnconfirmed = false }
            }
            // The peer answered ping `value` after reading everything sent before it.
            links[link]?.unconfirmed.removeAll { $0.beforePing < value }
        case .goAway:
            events.append(.goAway)
        case .packet(let bytes):
            events.append(.packet(bytes))
        case .offloadPacket(let bytes):
            events.append(.offloadPacket(bytes))
        case .sequencedPacket(let seq, let bytes):
            guard sequencedLinks.contains(link) else { throw .frame(.unknownKind(Frame.Kind.sequencedPacket.rawValue)) }
            events.append(.sequencedPacket(seq: seq, bytes, offloaded: false))
        case .sequencedOffloadPacket(let seq, let bytes):
            guard sequencedLinks.contains(link) else { throw .frame(.unknownKind(Frame.Kind.sequencedOffloadPacket.rawValue)) }
            events.append(.sequencedPacket(seq: seq, bytes, offloaded: true))
        case .linkReceived(let total):
            if let index = linkFlows.index(forKey: link) { linkFlows.values[index].reported(total, at: now) }
        case .linkClosing(let reason):
            guard links[link]?.closeReasons == true else { throw .frame(.unknownKind(Frame.Kind.linkClosing.rawValue)) }
            events.append(.peerClosingLink(link, reason))
        case .retire:
            links[link]?.receivedRetire = true
            retireLink(link, now: now)
        case .instance(let value):
            guard role == .initiator else { return }
            if let known = peerInstance, known != value {
                restartForPeerInstance(value)
            } else {
                peerInstance = value
            }
        }
    }

    /// A frame for a stream we no longer have: answer so the sender can finish too.
    private mutating func answerClosed(_ id: UInt32) throws(SessionError) {
        // Bounded, so a peer cannot make us queue replies faster than it reads them.
        guard sharedControl.count < Self.maxQueuedControlFrames else { throw .badStreamID(id) }
        switch closed[id] {
        case .finished(let received): sharedControl.append(.ack(id: id, received: received, limit: received))
        case .reset(let code): sharedControl.append(.reset(id: id, code: code))
        case nil:
            // Our own ids we never opened: a bug at the peer.
            guard isPeerStreamID(id) else {
                if id >= nextLocalStreamID { throw .badStreamID(id) }
                return
            }
            // A peer stream we do not know: our state is newer than the peer's (we restarted
            // or expired the session). Tell it the stream is gone; the instance frame on our
            // links makes it reset the rest.
            rememberClosed(id, .reset(.sessionExpired))
            sharedControl.append(.reset(id: id, code: .sessionExpired))
        }
    }

    private mutating func receiveData(id: UInt32, offset: UInt64, bytes: ByteBuffer) throws(SessionError) {
        // Moved out while mutated, so its held chunks stay uniquely referenced (no copy).
        guard var stream = streams.removeValue(forKey: id) else { return try answerClosed(id) }
        let end = offset + UInt64(bytes.readableBytes)
        if let final = stream.finalOffset, end > final {
            streams[id] = stream
            throw .finalOffsetViolation(stream: id)
        }
        guard end <= stream.advertisedLimit else {
            streams[id] = stream
            throw .flowControlViolation(stream: id)
        }
        acksDue.insert(id)
        // Already have it (a resend after a link loss): drop it; the acknowledgement tells
        // the sender where we are.
        guard end > stream.received, !stream.finDelivered else {
            streams[id] = stream
            return
        }
        let fresh: Int
        if offset <= stream.received, stream.reorder.isEmpty {
            // In order with nothing held (every pinned stream): deliver straight away.
            let count = Int(end - stream.received)
            let slice = bytes.getSlice(at: bytes.readerIndex + bytes.readableBytes - count, length: count) ?? ByteBuffer()
            stream.received = end
            fresh = count
            events.append(.streamData(id: id, bytes: slice))
        } else {
            // A striped stream's bytes from another link (PROTOCOL.md §5.3, "Striping"): hold
            // what is new, then deliver whatever now continues at `received`.
            let from = max(offset, stream.received)
            let skip = Int(from - offset)
            let part = bytes.getSlice(at: bytes.readerIndex + skip, length: bytes.readableBytes - skip) ?? ByteBuffer()
            guard let taken = stream.reorder.insert(part, at: from) else {
                streams[id] = stream
                throw .tooManyHeldFrames(stream: id)
            }
            fresh = taken
            stream.received = stream.reorder.drain(from: stream.received) { events.append(.streamData(id: id, bytes: $0)) }
        }
        // Held bytes count as received: the session window bounds them over all streams.
        sessionReceivedNew += UInt64(fresh)
        if stream.finalOffset == stream.received {
            stream.received += 1
            events.append(.streamFinished(id: id))
        }
        streams[id] = stream
        guard sessionReceivedNew <= sessionAdvertised else { throw .flowControlViolation(stream: 0) }
        completeIfDone(id)
    }

    private mutating func receiveFin(id: UInt32, finalOffset: UInt64) throws(SessionError) {
        guard var stream = streams[id] else { return try answerClosed(id) }
        if let known = stream.finalOffset, known != finalOffset { throw .finalOffsetViolation(stream: id) }
        let delivered = stream.finDelivered ? stream.received - 1 : stream.received
        guard finalOffset >= delivered, finalOffset >= stream.reorder.highestEnd ?? 0 else { throw .finalOffsetViolation(stream: id) }
        acksDue.insert(id)
        stream.finalOffset = finalOffset
        if !stream.finDelivered, stream.received == finalOffset {
            stream.received += 1
            events.append(.streamFinished(id: id))
        }
        streams[id] = stream
        completeIfDone(id)
    }

    private mutating func acknowledge(id: UInt32, received: UInt64, limit: UInt64, now: Nanoseconds) {
        // Moved out while mutated, so its send buffer stays uniquely referenced (no copy).
        guard var stream = streams.removeValue(forKey: id) else { return }
        stream.openAcknowledged = true
        stream.openPending = false
        noteAcknowledged(&stream, upTo: received)
        sessionBuffered -= stream.send.acknowledge(upTo: received)
        reconsiderStriping(&stream)
        stream.sendLimit = max(stream.sendLimit, limit)
        if stream.writerBlocked, stream.send.buffered < config.sendBufferLimit, sessionBuffered < config.sessionSendBufferLimit {
            stream.writerBlocked = false
            events.append(.streamWritable(id: id))
        }
        streams[id] = stream
        wakeSessionBlockedWriters()
        completeIfDone(id)
    }

    /// Room came back under `sessionSendBufferLimit`: every writer it stopped may go on.
    mutating func wakeSessionBlockedWriters() {
        guard sessionSendBlocked, sessionBuffered < config.sessionSendBufferLimit else { return }
        sessionSendBlocked = false
        for id in streams.keys.sorted() {
            guard let stream = streams[id], stream.writerBlocked, stream.send.buffered < config.sendBufferLimit else { continue }
            streams[id]?.writerBlocked = false
            events.append(.streamWritable(id: id))
        }
    }

    mutating func completeIfDone(_ id: UInt32) {
        guard let stream = streams[id], stream.isComplete else { return }
        // Send the final acknowledgement before forgetting the stream.
        sharedControl.append(.ack(id: id, received: stream.received, limit: stream.advertisedLimit))
        acksDue.remove(id)
        removeStream(id, as: .finished(received: stream.received))
        events.append(.streamClosed(id: id))
    }

    mutating func removeStream(_ id: UInt32, as state: ClosedStream) {
        if let stream = streams[id] {
            // Bytes delivered but never consumed (the socket went away) give their session
            // credit back, or each such stream would shrink the session window for good.
            let delivered = stream.finDelivered ? stream.received - 1 : stream.received
            if delivered > stream.consumed { sessionConsumed += delivered - stream.consumed }
            if sessionConsumed + config.sessionWindow >= sessionAdvertised + config.sessionWindow / 4 { sessionAckDue = true }
        }
        if let link = streams[id]?.link { links[link]?.streams.removeAll { $0 == id } }
        if var stream = streams.removeValue(forKey: id) {
            forgetSegments(of: &stream)
            if stream.stripeCandidate { stripeCandidates.removeAll { $0 == id } }
            sessionBuffered -= stream.send.buffered
            wakeSessionBlockedWriters()
        }
        acksDue.remove(id)
        rememberClosed(id, state)
    }

    /// Closed streams are remembered (bounded) so late frames after a link move get answers.
    mutating func rememberClosed(_ id: UInt32, _ state: ClosedStream) {
        if closed.updateValue(state, forKey: id) == nil { closedOrder.append(id) }
        if closedOrder.count > 8192 {
            let drop = closedOrder.count - 4096
            for old in closedOrder.prefix(drop) { closed[old] = nil }
            closedOrder.removeFirst(drop)
        }
    }
}
