// The data plane's links: reading and opening records, flushing sealed bytes, backpressure,
// closing (DataPlane.swift). Plane thread only.
import BYSTProto
import CTun
import Glibc
import NIOCore

extension DataPlane {
    func read(_ link: DataPlaneLink) {
        let result = link.readSocket(limit: Self.readBudget)
        if case .more = result { readPending = true }
        openRecords(link)
        if case .closed(let reason) = result, links[link.key] != nil { close(link, reason: reason) }
        readAfterWriting()
    }

    func openRecords(_ link: DataPlaneLink) {
        var opened = false
        // Records for the loop (not packets only, or behind one that was not), copied out as
        // they open — the next record is opened in place in the same storage — into one
        // buffer, and handed over in one task per read.
        var forLoop = ByteBuffer()
        var spans: [(start: Int, length: Int, flags: UInt8)] = []
        do throws(LinkMachine.Failure) {
            while let record = try link.machine.openRecord() {
                opened = true
                // Behind a record the loop must see first, packets wait their turn there — unless
                // they are all numbered: the reorderer puts them in their place anyway, without
                // the loop's delay.
                if record.flags == 0,
                   (spans.isEmpty && link.shared.recordsAtLoop.load(ordering: .relaxed) == 0) || link.sequencedPackets && isSequencedOnly(record.payload),
                   writePackets(record.payload, from: link) {
                    continue
                }
                if spans.isEmpty { forLoop.reserveCapacity(record.payload.readableBytes + link.machine.unreadBytes) }
                spans.append((forLoop.writerIndex, record.payload.readableBytes, record.flags))
                forLoop.writeImmutableBuffer(record.payload)
            }
        } catch {
            handToLoop(forLoop, spans, from: link)
            if opened { link.shared.lastReceived.store(Clocks.monotonic(), ordering: .relaxed) }
            return close(link, reason: "\(error)")
        }
        handToLoop(forLoop, spans, from: link)
        if opened { link.shared.lastReceived.store(Clocks.monotonic(), ordering: .relaxed) }
        link.machine.compactInbound(keepingCapacity: 1 << 20)
    }

    /// `link` carried packets: if its session counts it idle (PROTOCOL.md §5.5), the loop
    /// hears it at once — once — so the dead-link time counts from now, not from the idle
    /// link's last ping.
    func wakeIfIdle(_ link: DataPlaneLink) {
        guard link.shared.idle.load(ordering: .relaxed), link.shared.idle.exchange(false, ordering: .relaxed),
              let handler = handlers[link.key] else { return }
        loop.execute { handler.value.planeLinkBusy() }
    }

    /// Records for the loop's session, in order, in one task.
    private func handToLoop(_ buffer: ByteBuffer, _ spans: [(start: Int, length: Int, flags: UInt8)], from link: DataPlaneLink) {
        guard !spans.isEmpty, let handler = handlers[link.key] else { return }
        let records = spans.compactMap { span in
            buffer.getSlice(at: span.start, length: span.length).map { RecordOpener.Opened(flags: span.flags, payload: $0) }
        }
        link.shared.recordsAtLoop.add(records.count, ordering: .relaxed)
        let shared = link.shared, plane = self
        loop.execute {
            for record in records { handler.value.planeReceived(record) }
            // Their packets reach the TUN through this plane, ahead of the count.
            handler.value.node.tun?.loopPackets.flushToTun(recordsDone: shared, count: records.count, via: plane)
        }
    }

    func flushDirty() {
        guard !dirty.isEmpty else { return }
        // Flushing adds nothing to `dirty`; emptied after the loop, when the iteration's
        // copy is gone, so the storage is kept (emptying a shared copy would allocate anew).
        for link in dirty where links[link.key] === link { flush(link) }
        dirty.removeAll(keepingCapacity: true)
    }

    func flush(_ link: DataPlaneLink) {
        switch link.flush() {
        case .failed(let reason):
            return close(link, reason: reason)
        case .done:
            if link.closeWhenFlushed { return close(link, reason: nil) }
            if link.waitingForRoom {
                link.waitingForRoom = false
                _ = watch(link.fd, key: link.key, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, operation: EPOLL_CTL_MOD)
            }
        case .waiting:
            if !link.waitingForRoom {
                link.waitingForRoom = true
                _ = watch(link.fd, key: link.key, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLOUT.rawValue, operation: EPOLL_CTL_MOD)
            }
        }
        guard let backlogged = backlog.note(unsent: link.unsentBytes, on: link.key) else { return }
        link.shared.backlogged.store(backlogged, ordering: .relaxed)
        if !backlogged, let handler = handlers[link.key] {
            loop.execute { handler.value.planeWritable() }
        }
        pauseTun(!backlog.readsTun)
    }

    func pauseTun(_ pause: Bool) {
        guard pause != tunPaused else { return }
        tunPaused = pause
        _ = watch(device.fd, key: Self.tunKey, events: pause ? 0 : EPOLLIN.rawValue, operation: EPOLL_CTL_MOD)
    }

    /// Closes `link` here and tells its handler; `reason` nil: the loop asked for it.
    func close(_ link: DataPlaneLink, reason: String?) {
        guard links.removeValue(forKey: link.key) != nil else { return }
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, link.fd, nil)
        if backlog.remove(link.key) { pauseTun(!backlog.readsTun) }
        handBack(link, closed: reason)
    }

    func handBack(_ link: DataPlaneLink, closed reason: String?) {
        guard let handler = handlers.removeValue(forKey: link.key) else { return }
        loop.execute { handler.value.planeClosed(reason: reason) }
    }
}

private func isSequencedOnly(_ payload: ByteBuffer) -> Bool {
    payload.withUnsafeReadableBytes { PacketRecord.isSequencedOnly($0) }
}
