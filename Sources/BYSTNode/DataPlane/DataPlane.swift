// The data plane: one thread with its own epoll, the only code that reads and writes the
// TUN, and the owner of every established plain link (docs/ARCHITECTURE.md §3.6, §4.1).
//
//   TUN read ─▶ PacketRouter ─▶ .link: packet frames into a record on that link ─▶ seal ─▶ send(2)
//                            ├ .loop: the peer's links are on the event loop ─▶ PacketBatch ─▶ LoopPackets
//                            └ .drop(reason): counted
//   socket read ─▶ open ─▶ packets only (PacketRecord)? ─▶ source check ─▶ TUN write
//                        └ anything else ─▶ the loop's SessionMachine, in link order
//   loop ─▶ commands (adopt a link, payloads to seal, close, routes, packets for the TUN)
//        ─▶ inbox + eventfd
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
    // @unchecked: the mutable state is used on the plane's thread only (after `start`); the
    // loop reaches the plane through `post` and `tunCounters` (locked). Not private where
    // DataPlane+Links.swift and DataPlane+Tun.swift use it.

    enum Command: @unchecked Sendable {
        // @unchecked: a link's machine (opener, sealer) moves to the plane with it and is not
        // used on the loop again.
        case adopt(DataPlaneLink, handler: NIOLoopBound<LinkHandler>)
        /// Records the session laid out on the loop for a link here, to seal and send.
        case send(key: UInt64, records: PlaneRecords)
        case close(key: UInt64, afterFlush: Bool)
        case routes(PacketRouter, version: UInt64)
        /// One peer's links changed (`PacketRouter.update`); ignored unless `version` is the table's.
        case peer(PacketRouter.Peer, index: Int, version: UInt64)
        /// Packets from peers whose links the loop holds; `recordsDone`: a link of ours and how
        /// many of its records the loop has handled (after these packets: see `recordsAtLoop`).
        case writeToTun(PacketBatch, recordsDone: (DataPlaneLinkShared, Int)?)
        /// Packets another plane read for peers whose links are here (`PacketRouter.Decision.plane`).
        case route(PacketBatch, version: UInt64)
        case stop
    }

    /// This plane's position among the node's planes, one per TUN queue (`device`).
    let index: Int
    let device: TunDevice
    let mtu: Int
    let loop: any EventLoop
    let loopPackets: NIOLoopBound<LoopPackets>
    let logger: Logger
    private let inbox = Mutex<[Command]>([])
    let epollFD: Int32
    private let wakeFD: Int32
    private let exited = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(true)
    /// The plane's TUN counters, published after each round of events.
    private let publishedCounters = Mutex(TunCounters())
    /// Batches handed to the loop and not yet taken there. One task, made once, delivers all
    /// that wait (`handToLoop`): a hop allocates nothing.
    let loopInbox = Mutex<[(batch: PacketBatch, version: UInt64)]>([])
    private(set) var deliverToLoop: (@Sendable () -> Void)?
    /// Batches handed to the loop and not yet delivered there (taken or not); past
    /// `maxLoopBatches` (a loop that fell behind) further ones are dropped and counted.
    let loopBatchesUndelivered = Atomic<Int>(0)
    /// The buffers of batches posted to this plane (packets for the TUN, or routed here by
    /// another plane), for their senders' next; and of batches this plane handed to the loop.
    let batchSpares = PacketBatchSpares()
    let loopBatchSpares = PacketBatchSpares()
    /// `writeToTun` commands posted and not yet run: while none is, the loop may count a
    /// record it handled as done without a command (its packets, if any, are written).
    let tunWritesInFlight = Atomic<Int>(0)
    let loopBatchesDropped = Atomic<UInt64>(0)
    static let maxLoopBatches = 64

    private static let wakeKey: UInt64 = 0
    static let tunKey: UInt64 = 1
    /// Socket bytes read from one link per event, so one busy link cannot starve the rest.
    static let readBudget = 512 * 1024
    /// TUN packets (and bytes) read per event.
    static let tunBudget = 64
    static let tunByteBudget = 256 * 1024
    /// Room for one TUN read: a whole super-packet (up to 64 KiB) after its header.
    static let tunReadSize = VirtioNetHeader.size + 65536

    var links: [UInt64: DataPlaneLink] = [:]
    /// Each link's handler on the event loop, for what the plane hands back.
    var handlers: [UInt64: NIOLoopBound<LinkHandler>] = [:]
    var router = PacketRouter()
    var routesVersion: UInt64 = 0
    var counters = TunCounters()
    var countersChanged = false
    var dirty: [DataPlaneLink] = []
    var backlog = LinkBacklog()
    var tunPaused = false
    /// Packets read for peers whose links the loop holds, handed over after each read round.
    var toLoop = PacketBatch()
    /// The node's planes (set before they start), and packets read for each's links.
    var siblings: [DataPlane] = []
    var toPlanes: [PacketBatch] = []
    private var stopping = false
    /// A packet was written to the TUN since the last read after a write (see `read`).
    var wroteToTun = false
    var readAfterWrite = ReadAfterWritePolicy()
    /// When epoll last said the TUN was readable (for `TunReadPolicy`'s backlog rule).
    var previousTunWake: UInt64 = 0
    /// The commands being run; swapped with the inbox, so neither allocates in the steady state.
    private var taken: [Command] = []
    /// The batches among them, given back to `batchSpares` once `taken` is emptied.
    private var usedBatches: [PacketBatch] = []
    let tunBuffer: UnsafeMutableRawBufferPointer
    /// Parses and frames what is read from the TUN, and checks and writes what peers send
    /// (each with scratch arrays of its own, so neither's capacity follows the other's sizes).
    var packetReader = TunPacketReader()
    var writer: TunPacketWriter
    /// Packet striping (DataPlane+Striping.swift), by peer index in `router`: the numbering and
    /// link choice for peers whose packets this plane stripes, and the reordering of sequenced
    /// packets from peers. Emptied with each new routing table (indexes may change).
    var stripers: [Int: PacketStriper] = [:]
    var reorders: [Int: PacketReorder<HeldPacket>] = [:]
    /// What reorderers emptied by a new table had counted.
    var retiredReorderCounts = PacketReorder<HeldPacket>.Counts()
    /// A link had more to read than one event's budget this round: a gap may be filled by
    /// what is still unread, so it is not given up yet (`expireReorders`).
    var readPending = false

    init(index: Int, device: TunDevice, mtu: Int, writesWhole: Bool, loop: any EventLoop, loopPackets: LoopPackets, logger: Logger)
        throws(TunDevice.Failure) {
        self.index = index
        self.device = device
        self.mtu = mtu
        writer = TunPacketWriter(device: device, mtu: mtu, writesWhole: writesWhole)
        self.loop = loop
        self.loopPackets = NIOLoopBound(loopPackets, eventLoop: loop)
        self.logger = logger
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw .system(operation: "epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            let code = errno
            Glibc.close(epollFD)
            throw .system(operation: "eventfd", errno: code)
        }
        tunBuffer = .allocate(byteCount: Self.tunReadSize, alignment: 16)
        guard watch(wakeFD, key: Self.wakeKey, events: EPOLLIN.rawValue), watch(device.fd, key: Self.tunKey, events: EPOLLIN.rawValue) else {
            let code = errno
            Glibc.close(epollFD)
            Glibc.close(wakeFD)
            tunBuffer.deallocate()
            throw .system(operation: "epoll_ctl", errno: code)
        }
        deliverToLoop = { [loopPackets = self.loopPackets, weak self] in
            if let self { loopPackets.value.deliverHandedOver(from: self) }
        }
    }

    /// `siblings`: every plane of the node, this one included, in index order.
    func start(siblings: [DataPlane]) {
        self.siblings = siblings
        toPlanes = Array(repeating: PacketBatch(), count: siblings.count)
        let thread = Thread { [self] in
            // Foundation's `Thread.name` does not reach the kernel: set it here, on the thread,
            // so `top -H` and /proc/PID/task/*/comm show it (15 bytes at most).
            _ = byst_set_thread_name("byst-plane-\(index)")
            run()
        }
        thread.start()
    }

    /// The thread runs (false once it has ended: links are no longer handed to it).
    var isRunning: Bool { running.load(ordering: .relaxed) }

    /// From the loop: queued in order, run on the plane's thread.
    func post(_ command: Command) {
        guard isRunning else { return }
        let wasEmpty = inbox.withLock { queue in
            queue.append(command)
            return queue.count == 1
        }
        if wasEmpty { wake() }
    }

    /// From the loop: packets from peers for the TUN (`LoopPackets.flushToTun`), then
    /// `recordsDone`. While the plane has not taken the last thing posted and that is such a
    /// batch with room, they join it: no command, no buffer. Else `batch` goes as a command
    /// and starts again on a spare buffer. Empty after.
    func postToTun(_ batch: inout PacketBatch, recordsDone: (DataPlaneLinkShared, Int)?) {
        guard isRunning else { return batch.removeAll() }
        let wasEmpty: Bool? = inbox.withLock { queue in
            guard let last = queue.indices.last, case .writeToTun(var pending, let done) = queue[last],
                  pending.hasRoom(for: batch), let merged = Self.recordsDone(done, then: recordsDone) else {
                tunWritesInFlight.add(1, ordering: .relaxed)
                queue.append(.writeToTun(batch.take(refillingFrom: batchSpares), recordsDone: recordsDone))
                return queue.count == 1
            }
            // Out of the queue while it grows: shared, its buffer would be copied.
            queue[last] = .stop
            pending.append(contentsOf: batch)
            queue[last] = .writeToTun(pending, recordsDone: merged)
            return nil
        }
        guard let wasEmpty else { return batch.removeAll() }
        if wasEmpty { wake() }
    }

    /// What two `writeToTun` commands' `recordsDone` become when their batches join: one
    /// link's (or none), counts added; nil (do not join) for two different links.
    static func recordsDone(_ first: (DataPlaneLinkShared, Int)?, then second: (DataPlaneLinkShared, Int)?)
        -> (DataPlaneLinkShared, Int)?? {
        guard let first else { return .some(second) }
        guard let second else { return .some(first) }
        // `.none` spelled out: a bare `nil` here would be the inner optional, `.some(nil)`.
        guard first.0 === second.0 else { return .none }
        return (first.0, first.1 + second.1)
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Runs what was posted before, then ends the thread (waits up to a second for it).
    func stop() {
        post(.stop)
        _ = exited.wait(timeout: .now() + 1)
    }

    var tunCounters: TunCounters { publishedCounters.withLock { $0 } }

    // MARK: The thread

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while !stopping {
            let ready = epoll_wait(epollFD, &events, Int32(events.count), reorders.isEmpty ? -1 : reorderTimeout())
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("data plane: epoll_wait failed (errno \(errno)); the plane stops")
                break
            }
            readPending = false
            for index in 0..<Int(ready) {
                let key = events[index].data.u64
                let flags = events[index].events
                switch key {
                case Self.wakeKey: takeCommands()
                case Self.tunKey: tunReadable()
                default:
                    guard let link = links[key] else { continue }
                    if flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { read(link) }
                    if flags & EPOLLOUT.rawValue != 0, links[key] != nil { dirty.append(link) }
                }
            }
            if !reorders.isEmpty { expireReorders() }
            handToPlanes()
            flushDirty()
            handToLoop()
            if countersChanged {
                countersChanged = false
                let snapshot = countersWithReordering
                publishedCounters.withLock { $0 = snapshot }
            }
        }
        running.store(false, ordering: .relaxed)
        if !stopping {
            // Not asked to stop (epoll failed): the links go down and redial, and stay on the
            // event loop; the TUN is no longer read.
            logger.error("data plane: stopped; TUN packets are no longer carried")
            for link in links.values { handBack(link, closed: "the data plane stopped") }
        }
        links.removeAll()
        handlers.removeAll()
        siblings.removeAll()
        Glibc.close(epollFD)
        Glibc.close(wakeFD)
        tunBuffer.deallocate()
        exited.signal()
    }

    func watch(_ fd: Int32, key: UInt64, events: UInt32, operation: Int32 = EPOLL_CTL_ADD) -> Bool {
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
        // Only now, when the commands no longer hold them: a sender reusing one finds it unshared.
        while let batch = usedBatches.popLast() { batchSpares.giveBack(batch) }
        readAfterWriting()
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
        case .send(let key, let box):
            guard let link = links[key] else { return }
            do throws(LinkMachine.Failure) { try link.seal(&box.records) } catch {
                return close(link, reason: "sealing: \(error)")
            }
            dirty.append(link)
        case .close(let key, let afterFlush):
            guard let link = links[key] else { return }
            if afterFlush, link.unsentBytes > 0 || link.openRecord != nil {
                link.closeWhenFlushed = true
                dirty.append(link)
                return
            }
            // What is sealed goes out if the socket takes it now (a go-away, a reset).
            _ = link.flush()
            close(link, reason: nil)
        case .routes(let router, let version):
            // Held packets go out under the table their sender's index belongs to.
            releaseReorders()
            stripers.removeAll()
            self.router = router
            routesVersion = version
            for (key, link) in links { link.peerIndex = router.owner(ofLink: key) }
        case .peer(let peer, let index, let version):
            guard version == routesVersion, index < router.peers.count else { return }
            let before = router.peers[index].allLinks
            router.update(peer, at: index)
            for key in before + peer.allLinks { links[key]?.peerIndex = router.owner(ofLink: key) }
        case .writeToTun(let batch, let recordsDone):
            writeToTun(batch)
            usedBatches.append(batch)
            if let (shared, count) = recordsDone { shared.recordsAtLoop.subtract(count, ordering: .relaxed) }
            tunWritesInFlight.subtract(1, ordering: .relaxed)
        case .route(let batch, let version):
            sendRouted(batch, version: version)
            usedBatches.append(batch)
        case .stop:
            stopping = true
        }
    }
}
