import NIOCore

extension SessionMachine {
    /// Opens a stream towards `target` on the least-loaded link; returns its id, or nil at
    /// the stream limit.
    public mutating func openStream(target: String) -> UInt32? {
        guard streams.count < config.maxStreams, nextLocalStreamID < UInt32.max - 2 else { return nil }
        let id = nextLocalStreamID
        nextLocalStreamID += 2
        let link = leastLoadedLink()
        streams[id] = StreamState(id: id, link: link, target: target, sendLimit: Self.initialStreamCredit,
                                  receiveWindow: config.streamWindow)
        if let link { links[link]?.streams.append(id) }
        return id
    }

    /// Queues bytes on a stream; returns how many were taken (reading them from `data`).
    /// Fewer than offered means the send buffer is full: wait for `.streamWritable`.
    @discardableResult
    public mutating func send(_ data: inout ByteBuffer, on id: UInt32) -> Int {
        // Moved out while mutated, so its send buffer stays uniquely referenced (no copy).
        guard var stream = streams.removeValue(forKey: id) else { return 0 }
        defer { streams[id] = stream }
        guard !stream.send.finQueued else { return 0 }
        let streamRoom = max(0, config.sendBufferLimit - stream.send.buffered)
        let sessionRoom = max(0, config.sessionSendBufferLimit - sessionBuffered)
        let count = min(streamRoom, sessionRoom, data.readableBytes)
        if count < data.readableBytes {
            stream.writerBlocked = true
            // The session cap, not the stream's own, is what stopped it: report once per episode.
            if sessionRoom < streamRoom, !sessionSendBlocked {
                sessionSendBlocked = true
                events.append(.limitReached(.sessionBuffer))
            }
        }
        if count > 0, var part = data.readSlice(length: count) {
            stream.send.append(&part)
            sessionBuffered += count
            considerStriping(&stream)
        }
        return count
    }

    public func canSend(on id: UInt32) -> Bool {
        guard let stream = streams[id] else { return false }
        return !stream.send.finQueued && stream.send.buffered < config.sendBufferLimit
            && sessionBuffered < config.sessionSendBufferLimit
    }

    /// Events raised outside `receive` and `poll` (a cap reached by `send`), for the runtime
    /// to handle after calling `send`.
    public mutating func pendingEvents() -> [SessionEvent] {
        events.isEmpty ? [] : takeEvents()
    }

    public func isOpen(_ id: UInt32) -> Bool { streams[id] != nil }

    /// No more bytes will be sent on the stream (half-close).
    public mutating func finish(_ id: UInt32) {
        streams[id]?.send.queueFin()
    }

    /// Aborts the stream both ways.
    public mutating func reset(_ id: UInt32, code: Frame.ResetCode) {
        guard streams[id] != nil else { return }
        removeStream(id, as: .reset(code))
        sharedControl.append(.reset(id: id, code: code))
    }

    /// The application wrote out `count` delivered bytes: extend the peer's credit.
    public mutating func consumed(_ count: Int, on id: UInt32) {
        // A removed stream already gave its unconsumed bytes back (`removeStream`).
        guard var stream = streams[id] else { return }
        sessionConsumed += UInt64(count)
        if sessionConsumed + config.sessionWindow >= sessionAdvertised + config.sessionWindow / 4 {
            sessionAckDue = true
        }
        stream.consumed += UInt64(count)
        let limit = stream.consumed + config.streamWindow
        // Announce in steps of a quarter window so acks stay rare under load.
        if limit >= stream.advertisedLimit + config.streamWindow / 4 {
            stream.advertisedLimit = limit
            acksDue.insert(id)
        }
        streams[id] = stream
    }

    /// Tells the peer this side is shutting the session down.
    public mutating func goAway() {
        sharedControl.append(.goAway(code: 0))
    }
}
