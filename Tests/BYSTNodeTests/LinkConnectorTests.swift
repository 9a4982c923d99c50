import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import BYSTNode

/// Plain links connect their own sockets (LinkConnector.swift): the answer is waited for by a
/// dispatch source, never by a blocked thread, so dials to silent addresses delay no others.
@Suite struct LinkConnectorTests {
    /// A loopback listener with a backlog of `backlog` that never accepts: (descriptor, port).
    private func listener(backlog: Int32) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BlockingSocket.Failure(what: "socket", code: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, backlog) == 0 else {
            Glibc.close(fd)
            throw BlockingSocket.Failure(what: "bind/listen", code: errno)
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    private func withLoop<T>(_ body: (EventLoop) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let result = try await body(group.next())
            try await group.shutdownGracefully()
            return result
        } catch {
            try await group.shutdownGracefully()
            throw error
        }
    }

    @Test func connectsToAListenerAndHandsOverAConnectedNonBlockingDescriptor() async throws {
        let (server, port) = try listener(backlog: 8)
        defer { Glibc.close(server) }
        let fd = try await withLoop { loop in
            try await LinkConnector.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port), timeout: .seconds(5),
                                            on: loop).get()
        }
        defer { Glibc.close(fd) }
        var peer = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        #expect(named == 0, "the descriptor is not connected")
        #expect(Int(UInt16(bigEndian: peer.sin_port)) == port)
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func aClosedPortFailsWithTheKernelsReason() async throws {
        // Bound, then closed: nothing listens on the port any more.
        let (server, port) = try listener(backlog: 1)
        Glibc.close(server)
        let error = await #expect(throws: LinkConnector.Failure.self) {
            try await withLoop { loop in
                try await LinkConnector.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port), timeout: .seconds(5),
                                                on: loop).get()
            }
        }
        #expect(error?.description == "connect: Connection refused")
    }

    @Test func silentAddressesTimeOutWithoutHoldingUpAnotherDial() async throws {
        // A listener whose accept queue is full drops further SYNs: those connects hang.
        let (full, fullPort) = try listener(backlog: 0)
        defer { Glibc.close(full) }
        let (open, openPort) = try listener(backlog: 8)
        defer { Glibc.close(open) }
        try await withLoop { loop in
            let silent = try SocketAddress(ipAddress: "127.0.0.1", port: fullPort)
            // Fill the queue: connects that complete (the kernel takes them) until one hangs.
            var filled: [Int32] = []
            defer { filled.forEach { Glibc.close($0) } }
            for _ in 0..<4 {
                guard let fd = try? await LinkConnector.connect(to: silent, timeout: .milliseconds(500), on: loop).get() else { break }
                filled.append(fd)
            }
            #expect(filled.count < 4, "the listener's queue never filled")
            let outcomes = NIOLockedValueBox<[String]>([])
            let hanging = (0..<16).map { _ in LinkConnector.connect(to: silent, timeout: .seconds(3), on: loop) }
            for future in hanging {
                future.whenComplete { result in
                    let outcome: String
                    switch result {
                    case .success(let fd):
                        Glibc.close(fd)
                        outcome = "connected"
                    case .failure(let error): outcome = "\(error)"
                    }
                    outcomes.withLockedValue { $0.append(outcome) }
                }
            }
            // Counted when the good dial completes, on the loop: the test task itself may resume
            // later on a busy machine.
            let silentDoneBeforeGood = try await LinkConnector.connect(
                to: SocketAddress(ipAddress: "127.0.0.1", port: openPort), timeout: .seconds(5), on: loop
            ).map { fd in
                Glibc.close(fd)
                return outcomes.withLockedValue { $0.count }
            }.get()
            #expect(silentDoneBeforeGood == 0, "the good dial waited for the silent ones")
            for future in hanging { _ = try? await future.get() }
            let reasons = Set(outcomes.withLockedValue { $0 })
            #expect(reasons == ["connect: Connection timed out"])
        }
    }
}
