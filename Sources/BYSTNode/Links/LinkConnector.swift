// Connects a plain link's TCP socket ourselves, then gives it to NIO:
//
//   socket + non-blocking connect ─▶ poll for the result (a dispatch thread, never the loop)
//     ─▶ event loop: ClientBootstrap.withConnectedSocket(fd); the link duplicates it once established
//
// Why not ClientBootstrap.connect: NIO does not show a channel's descriptor, and a plain link
// writes records on it directly (LinkSocket). Accepted links have theirs from the accept thread.
import Dispatch
import Glibc
import NIOCore

enum LinkConnector {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The connected descriptor (close-on-exec, non-blocking), or a failure with its reason;
    /// completed on `eventLoop`. Waits at most `timeout` for TCP's answer.
    static func connect(to address: SocketAddress, timeout: Duration, on eventLoop: EventLoop) -> EventLoopFuture<Int32> {
        let promise = eventLoop.makePromise(of: Int32.self)
        DispatchQueue.global().async {
            switch connectBlocking(to: address, timeoutMilliseconds: Int32(clamping: timeout.nanoseconds / 1_000_000)) {
            case .success(let fd): promise.succeed(fd)
            case .failure(let failure): promise.fail(failure)
            }
        }
        return promise.futureResult
    }

    private static func connectBlocking(to address: SocketAddress, timeoutMilliseconds: Int32) -> Result<Int32, Failure> {
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(Failure(description: "socket: \(String(cString: strerror(errno)))")) }
        func failed(_ what: String, _ code: Int32) -> Result<Int32, Failure> {
            Glibc.close(fd)
            return .failure(Failure(description: "\(what): \(String(cString: strerror(code)))"))
        }
        let started = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if started != 0 {
            guard errno == EINPROGRESS else { return failed("connect", errno) }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat { ready = poll(&entry, 1, timeoutMilliseconds) } while ready < 0 && errno == EINTR
            guard ready > 0 else { return failed("connect", ready == 0 ? ETIMEDOUT : errno) }
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return failed("connect", errno) }
            guard code == 0 else { return failed("connect", code) }
        }
        return .success(fd)
    }
}
