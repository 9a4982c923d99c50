// The data plane: one thread with its own epoll that carries TUN packets over established
// plain links without the event loop (docs/PERFORMANCE.md, "A data plane outside NIO").
//
//   TUN read ─▶ route (DataPlaneRoutes) ─▶ the link the flow hashes to ─▶ packet frames into a
//            record ─▶ seal ─▶ send(2)                          (peer without plane links: ─▶ loop)
//   socket read ─▶ open ─▶ packets only (PacketRecord)? ─▶ source check ─▶ TUN write
//                        └ anything else ─▶ the loop's SessionMachine, in link order
//   loop ─▶ commands (adopt a link, payloads to seal, close, routes) ─▶ inbox + eventfd
//
// The plane owns each adopted link's socket, opener and sealer, so one thread keeps each
// link's nonces and byte order; the session's logic stays on the loop. HTTP, TLS and proxied
// links never come here.
import BYSTProto
import CTun
import Dispatch
import Foundation
import Glibc
import Logging
import NIOCore
import Synchronization
import Tun

final class DataPlane: @unchecked Sendable {
    // @unchecked: everything below `inbox` is used on the plane's thread only (after `start`).

    enum Command: @unchecked Sendable {
        // @unchecked: a link's opener and sealer move to the plane with it and are not used
        // on the loop again.
        case adopt(DataPlaneLink, handler: NIOLoopBound<LinkHandler>)
        case send(key: UInt64, payloads: [(ByteBuffer, UInt8)])
        case close(key: UInt64, afterFlush: Bool)
        case routes(DataPlaneRoutes)
        case stop
    }

    let device: TunDevice
    private let mtu: Int
    /// Super-packets from peers go to the TUN whole (it takes virtio-net headers and offloads).
    private let writesWhole: Bool
    private let loop: any EventLoop
    private let pump: NIOLoopBound<TunPump>
    private let logger: Logger
    private let inbox = Mutex<[Command]>([])
    private let epollFD: Int32
    private let wakeFD: Int32
    private let exited = DispatchSemaphore(value: 0)
    /// The plane's TUN counters, published after each round of events.
    private let publishedCounters = Mutex(TunPump.Counters())

    private static let wakeKey: UInt64 = 0
    private static let tunKey: UInt64 = 1
    /// Unsent bytes on one link above which the plane stops reading the TUN (and the loop
    /// stops producing for it), and below which both resume.
    static let highWater = 1 << 20
    static let lowWater = 256 * 1024
    /// Socket bytes read from one link per event, so one busy link cannot starve the rest.
    static let readBudget = 512 * 1024
    /// TUN packets (and bytes) read per event.
    static let tunBudget = 64
    static let tunByteBudget = 256 * 1024

    private var links: [UInt64: DataPlaneLink] = [:]
    /// Each link's handler on the event loop, for what the plane hands back.
    private var handlers: [UInt64: NIOLoopBound<LinkHandler>] = [:]
    private var routes = DataPlaneRoutes()
    private var counters = TunPump.Counters()
    private var countersChanged = false
    private var dirty: [DataPlaneLink] = []
    private var backloggedLinks = 0
    private var tunPaused = false
    private var stopping = false
    /// A packet was written to the TUN since the last read after a write (see `read`).
    private var wroteToTun = false
    private var readAfterWrite = ReadAfterWritePolicy()
    /// The commands being run; swapped with the inbox, so neither allocates in the steady state.
    private var taken: [Command] = []
    private let tunBuffer: UnsafeMutableRawBufferPointer
    /// The packet being routed, and the one being written, as arrays (parsing, checksums and
    /// clamping work on arrays); reused. Two, so neither's capacity follows the other's sizes.
    private var scratch: [UInt8] = []
    private var receivedScratch: [UInt8] = []
    private var segmentScratch: [UInt8] = []
    private let plainHeader = VirtioNetHeader.plain.bytes

    init(device: TunDevice, mtu: Int, writesWhole: Bool, loop: any EventLoop, pump: TunPump, logger: Logger) throws(TunDevice.Failure) {
        self.device = device
        self.mtu = mtu
        self.writesWhole = writesWhole
        self.loop = loop
        self.pump = NIOLoopBound(pump, eventLoop: loop)
        self.logger = logger
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw .system(operation: "epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            let code = errno
            Glibc.close(epollFD)
            throw .system(operation: "eventfd", errno: code)
        }
        tunBuffer = .allocate(byteCount: TunBatch.readSize, alignment: 16)
        guard watch(wakeFD, key: Self.wakeKey, events: EPOLLIN.rawValue), watch(device.fd, key: Self.tunKey, events: EPOLLIN.rawValue) else {
            let code = errno
            Glibc.close(epollFD)
            Glibc.close(wakeFD)
            tunBuffer.deallocate()
            throw .system(operation: "epoll_ctl", errno: code)
        }
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "byst-data-plane"
        thread.start()
    }

    /// From the loop: queued in order, run on the plane's thread.
    func post(_ command: Command) {
        let wasEmpty = inbox.withLock { queue in
            queue.append(command)
            return queue.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    /// Runs what was posted before, then ends the thread (waits up to a second for it).
    func stop() {
        post(.stop)
        _ = exited.wait(timeout: .now() + 1)
    }

    var tunCounters: TunPump.Counters { publishedCounters.withLock { $0 } }

    // MARK: The thread

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while !stopping {
            let ready = epoll_wait(epollFD, &events, Int32(events.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("data plane: epoll_wait failed (errno \(errno)); the plane stops")
                break
            }
            for index in 0..<Int(ready) {
                let key = events[index].data.u64
                let flags = events[index].events
                switch key {
                case Self.wakeKey: takeCommands()
                case Self.tunKey: readTun()
                default:
                    guard let link = links[key] else { continue }
                    if flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { read(link) }
                    if flags & EPOLLOUT.rawValue != 0, links[key] != nil { dirty.append(link) }
                }
            }
            flushDirty()
            if countersChanged {
                countersChanged = false
                let snapshot = counters
                publishedCounters.withLock { $0 = snapshot }
            }
        }
        links.removeAll()
        handlers.removeAll()
        Glibc.close(epollFD)
        Glibc.close(wakeFD)
        tunBuffer.deallocate()
        exited.signal()
    }

    private func watch(_ fd: Int32, key: UInt64, events: UInt32, operation: Int32 = EPOLL_CTL_ADD) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.u64 = key
        return epoll_ctl(epollFD, operation, fd, &event) == 0
    }

    private func takeCommands() {
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD, &value, 8)
        inbox.withLock { swap(&$0, &taken) }
        for command in taken { run(command) }
        taken.removeAll(keepingCapacity: true)
    }

    private func run(_ command: Command) {
        switch command {
        case .adopt(let link, let handler):
            handlers[link.key] = handler
            guard watch(link.fd, key: link.key, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue) else {
                return handBack(link, closed: "data plane: epoll_ctl failed (errno \(errno))")
            }
            links[link.key] = link
            // Records that arrived with the handshake's last bytes.
            openRecords(link)
        case .send(let key, let payloads):
            guard let link = links[key] else { return }
            do throws(RecordError) {
                for (payload, flags) in payloads { try link.seal(payload, flags: flags) }
            } catch {
                return close(link, reason: "sealing: \(error)")
            }
            dirty.append(link)
        case .close(let key, let afterFlush):
            guard let link = links[key] else { return }
            if afterFlush, link.outbound.readableBytes > 0 || link.openRecord != nil {
                link.closeWhenFlushed = true
                dirty.append(link)
                return
            }
            // What is sealed goes out if the socket takes it now (a go-away, a reset).
            _ = link.flush()
            close(link, reason: nil)
        case .routes(let routes):
            self.routes = routes
            for (index, peer) in routes.peers.enumerated() {
                for key in peer.allLinks { links[key]?.peerIndex = index }
            }
        case .stop:
            stopping = true
        }
    }

    // MARK: Links

    private func read(_ link: DataPlaneLink) {
        let result = link.readSocket(limit: Self.readBudget)
        openRecords(link)
        if case .closed(let reason) = result, links[link.key] != nil { close(link, reason: reason) }
        // A packet written to the TUN is often answered inside the write (an echo reply, a
        // local socket's ACK): read it now, and it leaves in this round, without a trip
        // through epoll_wait. The policy backs off while such reads find nothing.
        if wroteToTun {
            wroteToTun = false
            if readAfterWrite.shouldRead() {
                readAfterWrite.record(found: readTun(stopAfterSmall: ReadAfterWritePolicy.smallAnswerBytes))
            }
        }
    }

    private func openRecords(_ link: DataPlaneLink) {
        var opened = false
        do throws(RecordError) {
            while let record = try link.opener.open(&link.inbound) {
                opened = true
                if record.flags == 0, link.shared.recordsAtLoop.load(ordering: .relaxed) == 0, writePackets(record.payload, from: link) {
                    continue
                }
                // Copied out: the next record is opened in place in the same storage.
                var copy = record
                copy.payload = ByteBuffer()
                copy.payload.reserveCapacity(record.payload.readableBytes)
                copy.payload.writeImmutableBuffer(record.payload)
                link.shared.recordsAtLoop.add(1, ordering: .relaxed)
                guard let handler = handlers[link.key] else { continue }
                let shared = link.shared, forward = copy
                loop.execute {
                    handler.value.planeReceived(forward)
                    shared.recordsAtLoop.subtract(1, ordering: .relaxed)
                }
            }
        } catch {
            if opened { link.shared.lastReceived.store(Clocks.monotonic(), ordering: .relaxed) }
            return close(link, reason: "record layer: \(error)")
        }
        if opened { link.shared.lastReceived.store(Clocks.monotonic(), ordering: .relaxed) }
        if link.inbound.readableBytes == 0, link.inbound.capacity > 1 << 20 { link.inbound = ByteBuffer() }
    }

    private func flushDirty() {
        guard !dirty.isEmpty else { return }
        // Flushing adds nothing to `dirty`; emptied after the loop, when the iteration's
        // copy is gone, so the storage is kept (emptying a shared copy would allocate anew).
        for link in dirty where links[link.key] === link { flush(link) }
        dirty.removeAll(keepingCapacity: true)
    }

    private func flush(_ link: DataPlaneLink) {
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
        setBacklogged(link, link.outbound.readableBytes > (link.backlogged ? Self.lowWater : Self.highWater))
    }

    private func setBacklogged(_ link: DataPlaneLink, _ backlogged: Bool) {
        guard link.backlogged != backlogged else { return }
        link.backlogged = backlogged
        link.shared.backlogged.store(backlogged, ordering: .relaxed)
        backloggedLinks += backlogged ? 1 : -1
        if !backlogged, let handler = handlers[link.key] {
            loop.execute { handler.value.planeWritable() }
        }
        pauseTun(backloggedLinks > 0)
    }

    private func pauseTun(_ pause: Bool) {
        guard pause != tunPaused else { return }
        tunPaused = pause
        _ = watch(device.fd, key: Self.tunKey, events: pause ? 0 : EPOLLIN.rawValue, operation: EPOLL_CTL_MOD)
    }

    /// Closes `link` here and tells its handler; `reason` nil: the loop asked for it.
    private func close(_ link: DataPlaneLink, reason: String?) {
        guard links.removeValue(forKey: link.key) != nil else { return }
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, link.fd, nil)
        if link.backlogged { setBacklogged(link, false) }
        handBack(link, closed: reason)
    }

    private func handBack(_ link: DataPlaneLink, closed reason: String?) {
        guard let handler = handlers.removeValue(forKey: link.key) else { return }
        loop.execute { handler.value.planeClosed(reason: reason) }
    }

    // MARK: The TUN

    /// Reads and routes what the TUN has (up to the budgets); whether it found anything.
    /// `stopAfterSmall`: a first read of at most that many bytes is taken as all there is.
    @discardableResult
    private func readTun(stopAfterSmall: Int? = nil) -> Bool {
        var count = 0, bytes = 0
        defer { if count > 0 { countersChanged = true } }
        while count < Self.tunBudget, bytes < Self.tunByteBudget, !tunPaused {
            let length: Int?
            do throws(TunDevice.Failure) { length = try device.read(into: tunBuffer) } catch {
                logger.warning("data plane: \(error)")
                break
            }
            guard let length, length > 0 else { break }
            route(UnsafeRawBufferPointer(rebasing: tunBuffer[0..<length]))
            count += 1
            bytes += length
            if count == 1, let small = stopAfterSmall, length <= small { break }
        }
        return count > 0
    }

    /// One read from the TUN (as `TunPump.route`, for peers with plane links).
    private func route(_ read: UnsafeRawBufferPointer) {
        countersChanged = true
        counters.packets_from_tun += 1
        let headerSize = device.vnetHeader ? VirtioNetHeader.size : 0
        guard read.count > headerSize else { return counters.dropped_malformed += 1 }
        let header = headerSize == 0 ? VirtioNetHeader.plain : VirtioNetHeader(read) ?? .plain
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: read[headerSize...]))
        // Before parsing: an `IPPacket` holds slices of `scratch`, and writing to the array
        // while one is alive would copy it.
        if header.needsChecksum, !header.isGSO {
            do throws(GSOSegmenter.Failure) { try GSOSegmenter.completeChecksum(&scratch, header: header) } catch {
                return counters.dropped_malformed += 1
            }
        }
        guard let packet = IPPacket(scratch),
              let peerIndex = routes.routes.lookup(packet.destination), peerIndex < routes.peers.count
        else { return toLoop(read) }
        let peer = routes.peers[peerIndex]
        guard !peer.sendLinks.isEmpty else { return toLoop(read) }
        let hash = packet.flowHash(scratch)
        guard let link = links[peer.sendLinks[Int(hash % UInt64(peer.sendLinks.count))]] else { return toLoop(read) }
        var sent = 0
        if header.isGSO {
            if peer.takesOffloadPackets, scratch.count + Frame.packetHeaderSize + Frame.offloadHeaderSize <= link.peerMaxPayload {
                if scratch.withUnsafeBytes({ link.appendPacket($0, offloadHeader: header) }) { sent += 1 }
                counters.super_packets_sent_whole += 1
            } else {
                counters.super_packets_segmented += 1
                do throws(GSOSegmenter.Failure) {
                    try GSOSegmenter.forEachSegment(of: scratch, header: header, scratch: &segmentScratch) { segment in
                        if segment.withUnsafeBytes({ link.appendPacket($0, offloadHeader: nil) }) { sent += 1 }
                    }
                } catch {
                    counters.dropped_malformed += 1
                }
            }
        } else {
            MSSClamp.clamp(&scratch, packet: packet, mtu: mtu)
            if scratch.withUnsafeBytes({ link.appendPacket($0, offloadHeader: nil) }) { sent += 1 }
        }
        if let failure = link.sealFailure { return close(link, reason: "sealing: \(failure)") }
        if sent > 0 {
            link.shared.packetsOut.add(UInt64(sent), ordering: .relaxed)
            if link.openRecord != nil || link.outbound.readableBytes > 0, dirty.last !== link { dirty.append(link) }
        }
    }

    /// A packet the plane does not carry (no route, or its peer has no plane links now): the
    /// loop routes it as it would have read it (and counts its drops).
    private func toLoop(_ read: UnsafeRawBufferPointer) {
        counters.packets_from_tun -= 1
        var bytes = ByteBuffer()
        bytes.writeBytes(read)
        let pump = self.pump, copy = bytes
        loop.execute { copy.withUnsafeReadableBytes { pump.value.routeFromPlane($0) } }
    }

    /// A record of packet frames only, from `link`: each packet to the TUN. False (nothing
    /// done) for any other payload.
    private func writePackets(_ payload: ByteBuffer, from link: DataPlaneLink) -> Bool {
        payload.withUnsafeReadableBytes { bytes in
            guard let count = PacketRecord.packetCount(bytes) else { return false }
            let allowed = link.peerIndex < routes.peers.count ? routes.peers[link.peerIndex].allowedIPs : []
            PacketRecord.forEachPacket(bytes) { frame, offloaded in
                if offloaded { writeOffloaded(frame, allowed: allowed) } else { writePlain(frame, allowed: allowed) }
            }
            link.shared.packetRecordsOpened.add(1, ordering: .relaxed)
            link.shared.packetsIn.add(UInt64(count), ordering: .relaxed)
            link.shared.payloadBytesIn.add(UInt64(bytes.count), ordering: .relaxed)
            countersChanged = true
            return true
        }
    }

    /// As `TunPump.fromPeer`.
    private func writePlain(_ packet: UnsafeRawBufferPointer, allowed: [IPPrefix]) {
        receivedScratch.removeAll(keepingCapacity: true)
        receivedScratch.append(contentsOf: packet)
        guard let parsed = IPPacket(receivedScratch) else { return counters.dropped_malformed += 1 }
        guard allowed.contains(where: { $0.contains(parsed.source) }) else { return counters.dropped_spoofed_source += 1 }
        MSSClamp.clamp(&receivedScratch, packet: parsed, mtu: mtu)
        writeToTun(receivedScratch)
    }

    private func writeToTun(_ packet: [UInt8]) {
        let written = device.vnetHeader
            ? plainHeader.withUnsafeBytes { header in packet.withUnsafeBytes { device.write(header: header, packet: $0) } }
            : packet.withUnsafeBytes { device.write($0) }
        if written {
            counters.packets_to_tun += 1
            wroteToTun = true
        } else {
            counters.dropped_tun_write += 1
        }
    }

    /// As `TunPump.offloadedFromPeer`.
    private func writeOffloaded(_ frame: UnsafeRawBufferPointer, allowed: [IPPrefix]) {
        guard let header = VirtioNetHeader(frame) else { return counters.dropped_malformed += 1 }
        let packet = UnsafeRawBufferPointer(rebasing: frame[VirtioNetHeader.size...])
        receivedScratch.removeAll(keepingCapacity: true)
        receivedScratch.append(contentsOf: writesWhole ? packet.prefix(IPPacket.maxHeaderBytes) : packet[...])
        guard let parsed = IPPacket(receivedScratch, length: packet.count) else { return counters.dropped_malformed += 1 }
        guard allowed.contains(where: { $0.contains(parsed.source) }) else { return counters.dropped_spoofed_source += 1 }
        if writesWhole {
            if device.write(frame) {
                counters.super_packets_received += 1
                wroteToTun = true
            } else {
                counters.dropped_tun_write += 1
            }
            return
        }
        do throws(GSOSegmenter.Failure) {
            try GSOSegmenter.forEachSegment(of: receivedScratch, header: header, scratch: &segmentScratch) { writeToTun($0) }
        } catch {
            counters.dropped_malformed += 1
        }
    }
}
