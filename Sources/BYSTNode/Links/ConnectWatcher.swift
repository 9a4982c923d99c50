// Waits for dialed links' non-blocking connects (LinkConnector) on one thread of its own,
// `byst-connect`, with an epoll:
//
//   watch(fd) ─▶ pending[fd] (deadline, promise) ─▶ epoll: EPOLLOUT, one shot
//   thread: writable ─▶ connected? ─▶ out of the epoll ─▶ promise gets the fd
//                                  └▶ failed ─▶ out of the epoll ─▶ closed ─▶ promise fails
//           deadline passed ─▶ out of the epoll ─▶ closed ─▶ promise fails (ETIMEDOUT)
//
// A descriptor leaves the epoll before it is handed on or closed, so a number the kernel
// reuses for a new socket is never watched twice; and "writable" is checked against the
// socket's state (getpeername), so an event that was already on its way for an old socket
// cannot complete a new one with the same number. (libdispatch write sources did this job
// before and crashed in `_dispatch_source_refs_finalize_unregistration` with 2,000 connects at
// once, many of them reset: scripts/bench-hub.sh.)
import BYSTProto
import CTun
import Foundation
import Glibc
import NIOCore
import Synchronization

final class ConnectWatcher: Sendable {
    static let shared = ConnectWatcher()

    private struct Pending {
        var deadline: Nanoseconds
        var promise: EventLoopPromise<Int32>
    }

    private struct State {
        var pending: [Int32: Pending] = [:]
        var started = false
    }

    private let state = Mutex(State())
    private let epollFD: Int32
    private let wakeFD: Int32

    private init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if epollFD >= 0, wakeFD >= 0 {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.fd = wakeFD
            _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
        }
    }

    /// Watches `fd`, whose connect is in progress, until it is connected (the promise gets
    /// `fd`), fails or `timeout` passes (`fd` is closed and the promise fails).
    func watch(_ fd: Int32, timeout: Duration, promise: EventLoopPromise<Int32>) {
        guard epollFD >= 0, wakeFD >= 0 else {
            Glibc.close(fd)
            return promise.fail(LinkConnector.Failure("connect (no epoll for waiting)", EMFILE))
        }
        let deadline = Clocks.monotonic() + timeout.nanoseconds
        let startThread = state.withLock { state -> Bool in
            state.pending[fd] = Pending(deadline: deadline, promise: promise)
            defer { state.started = true }
            return !state.started
        }
        if !arm(fd, operation: EPOLL_CTL_ADD) {
            let code = errno
            if let entry = state.withLock({ $0.pending.removeValue(forKey: fd) }) {
                Glibc.close(fd)
                entry.promise.fail(LinkConnector.Failure("connect (epoll_ctl)", code))
            }
            return
        }
        if startThread {
            Thread { [self] in
                // Set on the thread: Foundation's `Thread.name` does not reach the kernel's comm.
                _ = byst_set_thread_name("byst-connect")
                run()
            }.start()
        }
        // Its deadline may be the earliest: the thread recomputes how long it may sleep.
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func arm(_ fd: Int32, operation: Int32) -> Bool {
        var event = epoll_event()
        event.events = EPOLLOUT.rawValue | EPOLLONESHOT.rawValue
        event.data.fd = fd
        return epoll_ctl(epollFD, operation, fd, &event) == 0
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let ready = epoll_wait(epollFD, &events, Int32(events.count), sleepMilliseconds())
            if ready < 0 && errno != EINTR { usleep(10_000) }  // never spin on a broken epoll
            for index in 0..<max(0, Int(ready)) {
                let fd = events[index].data.fd
                if fd == wakeFD {
                    var count: UInt64 = 0
                    _ = Glibc.read(wakeFD, &count, 8)
                } else {
                    answered(fd)
                }
            }
            expire(now: Clocks.monotonic())
        }
    }

    /// Until the earliest deadline, rounded up to a millisecond; -1 (no limit) with none.
    private func sleepMilliseconds() -> Int32 {
        guard let earliest = state.withLock({ $0.pending.values.lazy.map(\.deadline).min() }) else { return -1 }
        let now = Clocks.monotonic()
        return earliest <= now ? 0 : Int32(clamping: (earliest - now + 999_999) / 1_000_000)
    }

    /// `fd` turned writable: connected, failed, or (an event meant for an earlier socket with
    /// the same number) still connecting, which waits on.
    private func answered(_ fd: Int32) {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0 { code = errno }
        if code == 0 {
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connected = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
            } == 0
            if !connected {
                let reason = errno
                if reason == ENOTCONN, state.withLock({ $0.pending[fd] != nil }), arm(fd, operation: EPOLL_CTL_MOD) { return }
                code = reason
            }
        }
        finish(fd, failure: code == 0 ? nil : LinkConnector.Failure("connect", code))
    }

    private func expire(now: Nanoseconds) {
        let late = state.withLock { $0.pending.filter { $0.value.deadline <= now }.map(\.key) }
        for fd in late { finish(fd, failure: LinkConnector.Failure("connect", ETIMEDOUT)) }
    }

    /// Decides `fd` once: out of the epoll, then handed on or closed.
    private func finish(_ fd: Int32, failure: LinkConnector.Failure?) {
        guard let entry = state.withLock({ $0.pending.removeValue(forKey: fd) }) else { return }
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        if let failure {
            Glibc.close(fd)
            entry.promise.fail(failure)
        } else {
            entry.promise.succeed(fd)
        }
    }
}
