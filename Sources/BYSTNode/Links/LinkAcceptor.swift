// A link listener's socket, accepted on its own thread (docs/OPERATIONS.md, "Limits"):
//
//   listen(2), backlog 1024 ─▶ accept (thread "byst-accept") ─▶ AcceptGate: source over its rate?
//        └─ yes: SO_LINGER 0 + close (a reset; nothing read, no channel, no event-loop work)
//        └─ no:  ClientBootstrap.withConnectedSocket ─▶ event loop: pending table ▸ LinkHandler / HTTP
//
// Why not a NIO ServerBootstrap: there every accepted connection becomes a channel on the
// event loop before any handler can look at it, so a flood of connections costs the loop that
// also moves the peers' data. Refused here, a flood's connection costs one accept and one close
// on another thread.
import BYSTProto
import CTun
import Foundation
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// One listening socket and the thread that accepts on it.
///
/// **Invariants**: the thread owns the descriptor: it closes it when it stops, so the number
/// is never reused under a running `accept`. `close()` returns once the thread has stopped,
/// so nothing is handed off after it (an event loop shut down next gets no new channel).
final class LinkAcceptor: Sendable {
    let address: SocketAddress
    private let fd: Int32
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let exited = DispatchSemaphore(value: 0)

    /// Connections queued by the kernel before we accept them (capped by net.core.somaxconn):
    /// deep enough that a burst does not make a real peer's SYN wait for a retransmission (1 s).
    static let backlog: Int32 = 1024

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private init(address: SocketAddress, fd: Int32) {
        self.address = address
        self.fd = fd
    }

    /// Binds and listens on `address` (a host name is resolved once, here).
    static func bind(_ address: HostPort) throws -> LinkAcceptor {
        let resolved = try SocketAddress.makeAddressResolvingHost(address.host, port: Int(address.port))
        let fd = socket(resolved.protocol == .inet6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = resolved.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw Failure(description: "bind \(address): \(reason)")
        }
        return LinkAcceptor(address: resolved, fd: fd)
    }

    /// Starts the accept thread: connections `gate` admits go to `handOff` (on this thread).
    func start(gate: AcceptGate, handOff: @escaping @Sendable (Int32) -> Void) {
        guard !stopping.load(ordering: .acquiring), !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            // Set on the thread: Foundation's `Thread.name` does not reach the kernel's comm.
            _ = byst_set_thread_name("byst-accept")
            run(gate: gate, handOff: handOff)
            exited.signal()
        }
        thread.start()
    }

    /// Stops accepting at once: the socket stops listening now, the thread closes it; returns
    /// when the thread has stopped (at once: it only ever blocks in `accept`).
    func close() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Wakes the blocked accept (EINVAL) and refuses new connections from here on.
        shutdown(fd, Int32(SHUT_RDWR))
        if started.load(ordering: .acquiring) {
            _ = exited.wait(timeout: .now() + .seconds(1))
        } else {
            Glibc.close(fd)
        }
    }

    private func run(gate: AcceptGate, handOff: @Sendable (Int32) -> Void) {
        defer { Glibc.close(fd) }
        while !stopping.load(ordering: .acquiring) {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &length) }
            }
            guard client >= 0 else {
                let code = errno
                if stopping.load(ordering: .acquiring) { return }
                // Out of descriptors or memory: the connection waits in the queue; try again
                // shortly instead of spinning (NIO's accept backoff does the same).
                if code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                    gate.acceptFailed(code)
                    usleep(10_000)
                } else if code != EINTR && code != ECONNABORTED && code != EAGAIN {
                    // Not expected on a listening socket: never spin on it.
                    usleep(1000)
                }
                continue
            }
            guard gate.admit(Self.source(storage)) else {
                // A reset: the node keeps no TIME_WAIT state for a flood's connections.
                var reset = linger(l_onoff: 1, l_linger: 0)
                setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                Glibc.close(client)
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            handOff(client)
        }
    }

    private static func source(_ storage: sockaddr_storage) -> HandshakeSource? {
        withUnsafeBytes(of: storage) { raw in
            switch Int32(storage.ss_family) {
            case AF_INET:
                return HandshakeSource(ipv4: UInt32(bigEndian: raw.loadUnaligned(as: sockaddr_in.self).sin_addr.s_addr))
            case AF_INET6:
                // sin6_addr: 16 bytes in network order (offset 8 of sockaddr_in6).
                let offset = MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr) ?? 8
                return HandshakeSource(ipv6High: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                                       low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
            default:
                return nil
            }
        }
    }
}
