// One thread of `byst-bench flood` (FloodGenerator.swift): non-blocking connects paced at its
// share of the rate, poll(2) over its open sockets, one payload each, resets at the hold.
import BYSTProto
import Glibc
import NIOCore

/// One thread's share of a flood: a table of open sockets, polled together.
///
/// **Invariants**: at most `options.maxOpen` sockets open; each is closed (reset) within
/// `options.hold` of its start, and all are closed when `run` returns.
struct FloodWorker {
    private struct Slot {
        var fd: Int32 = -1
        var kind = FloodOptions.Kind.silent
        var started: UInt64 = 0
        var connected = false
    }

    private let options: FloodOptions
    private var slots: [Slot]
    /// poll(2) entries, one per slot (fd -1 while the slot is free: poll skips it).
    private var polled: [pollfd]
    private var free: [Int]
    /// Slots in start order (with the start time), for the hold deadline; stale entries skipped.
    private var starts: [(slot: Int, started: UInt64)] = []
    private var startsHead = 0
    private var random: SplitMix64
    private var result = FloodResult()
    private let target: sockaddr_storage
    private let targetLength: socklen_t
    private let family: Int32
    private let sources: [(sockaddr_storage, socklen_t)]
    /// Half a head that never ends (slowloris), and one over the 16 KiB default.
    private let httpHeads: [[UInt8]] = [4, 400].map { lines in
        var head = Array("POST /byst HTTP/1.1\r\nHost: flood\r\nTransfer-Encoding: chunked\r\n".utf8)
        for line in 0..<lines { head += Array("X-Flood-\(line): \(String(repeating: "a", count: 48))\r\n".utf8) }
        return head
    }

    init(options: FloodOptions, seed: UInt64) {
        self.options = options
        slots = Array(repeating: Slot(), count: options.maxOpen)
        polled = Array(repeating: pollfd(fd: -1, events: 0, revents: 0), count: options.maxOpen)
        free = Array((0..<options.maxOpen).reversed())
        random = SplitMix64(seed: seed ^ Self.now())
        (target, targetLength) = Self.storage(options.target)
        family = options.target.protocol == .inet6 ? AF_INET6 : AF_INET
        sources = options.sources.map(Self.storage)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private static func storage(_ address: SocketAddress) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        var length = socklen_t(0)
        address.withSockAddr { pointer, size in
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: size))
            }
            length = socklen_t(size)
        }
        return (storage, length)
    }

    mutating func run() -> FloodResult {
        let begin = Self.now()
        let end = begin + options.duration.nanoseconds
        while true {
            let now = Self.now()
            guard now < end else { break }
            let due = Int(Double(now - begin) / 1e9 * Double(options.rate)) - result.started
            // At most 1,000 per turn: a stalled thread catches up in steps, not one burst.
            for _ in 0..<max(0, min(due, free.count, 1000)) { launch(now: now) }
            expireHolds(now: now)
            guard poll(&polled, nfds_t(polled.count), 1) > 0 else { continue }
            for slot in polled.indices where polled[slot].fd >= 0 && polled[slot].revents != 0 { handle(slot, polled[slot].revents) }
        }
        result.seconds = Double(Self.now() - begin) / 1e9
        for index in slots.indices where slots[index].fd >= 0 { closeSlot(index) }
        return result
    }

    private mutating func launch(now: UInt64) {
        let index = result.started
        result.started += 1
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            result.failed += 1
            return
        }
        // Reset on close: neither side keeps TIME_WAIT state for a flood's connections.
        var reset = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
        if !sources.isEmpty {
            var (source, length) = sources[index % sources.count]
            let bound = withUnsafePointer(to: &source) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else {
                Glibc.close(fd)
                result.failed += 1
                return
            }
        }
        var address = target
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, targetLength) }
        }
        guard connected == 0 || errno == EINPROGRESS, let slot = free.popLast() else {
            Glibc.close(fd)
            result.failed += 1
            return
        }
        slots[slot] = Slot(fd: fd, kind: options.kind(index), started: now, connected: false)
        polled[slot] = pollfd(fd: fd, events: Int16(POLLOUT | POLLIN), revents: 0)
        starts.append((slot, now))
    }

    private mutating func handle(_ slot: Int, _ events: Int16) {
        guard slots[slot].fd >= 0 else { return }
        if !slots[slot].connected {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(slots[slot].fd, SOL_SOCKET, SO_ERROR, &error, &length)
            switch error {
            case 0 where events & Int16(POLLOUT) != 0:
                becomeConnected(slot)
            case ECONNRESET, EPIPE:
                // Established, then reset at once: the node accepted it and refused it.
                countConnected(slot, sent: 0)
                result.closedByPeer += 1
                return closeSlot(slot)
            case 0:
                return
            default:
                result.failed += 1
                return closeSlot(slot)
            }
        }
        if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            var sink = [UInt8](repeating: 0, count: 512)
            let count = recv(slots[slot].fd, &sink, sink.count, 0)
            if count == 0 || (count < 0 && errno != EAGAIN) {
                result.closedByPeer += 1
                closeSlot(slot)
            }
        }
    }

    private mutating func becomeConnected(_ slot: Int) {
        let payload = makePayload(slots[slot].kind)
        let sent = payload.isEmpty ? 0 : payload.withUnsafeBytes { send(slots[slot].fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        countConnected(slot, sent: max(0, sent))
        slots[slot].connected = true
        polled[slot].events = Int16(POLLIN)
    }

    private mutating func countConnected(_ slot: Int, sent: Int) {
        result.connected += 1
        result.byKind[slots[slot].kind.rawValue] += 1
        result.bytesSent += sent
    }

    private mutating func expireHolds(now: UInt64) {
        let hold = options.hold.nanoseconds
        while startsHead < starts.count, now - starts[startsHead].started >= hold {
            let (slot, started) = starts[startsHead]
            startsHead += 1
            if slots[slot].fd >= 0, slots[slot].started == started {
                if !slots[slot].connected { result.failed += 1 }
                closeSlot(slot)
            }
        }
        if startsHead > 4096, startsHead * 2 >= starts.count {
            starts.removeFirst(startsHead)
            startsHead = 0
        }
    }

    private mutating func closeSlot(_ slot: Int) {
        Glibc.close(slots[slot].fd)
        slots[slot].fd = -1
        polled[slot] = pollfd(fd: -1, events: 0, revents: 0)
        free.append(slot)
    }

    // MARK: Payloads

    private mutating func makePayload(_ kind: FloodOptions.Kind) -> [UInt8] {
        switch kind {
        case .handshake, .keyedHandshake:
            // PROTOCOL.md §3.1: magic, version, suite, key id, n1, e.public ‖ hello ciphertext.
            var bytes = LinkWire.magic + [LinkWire.version, 0x01]
            bytes += kind == .keyedHandshake ? options.keyID?.bytes ?? randomBytes(KeyID.size) : randomBytes(KeyID.size)
            let message = randomBytes(X25519.keySize + 40 + Int(random.next() % 24) + 16)
            bytes += [UInt8(message.count >> 8), UInt8(message.count & 0xFF)]
            return bytes + message
        case .junk:
            return randomBytes(16 + Int(random.next() % 496))
        case .silent:
            return []
        case .http:
            return httpHeads[Int(random.next() % 2)]
        }
    }

    private mutating func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = random.next()
            for _ in 0..<8 where index < count {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }
}
