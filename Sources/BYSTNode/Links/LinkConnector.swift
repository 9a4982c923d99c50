// Connects a plain link's TCP socket ourselves, then gives it to NIO:
//
//   socket + non-blocking connect (on the loop: it returns at once)
//     ─▶ ConnectWatcher (one thread, one epoll) waits for TCP's answer or the deadline
//     ─▶ event loop: ClientBootstrap.withConnectedSocket(fd); the link duplicates it once established
//
// Why not ClientBootstrap.connect: NIO does not show a channel's descriptor, and a plain link
// writes records on it directly (LinkSocket); and an uplink binds the socket before it connects.
// Every dialed link connects here (plain, HTTP, split POSTs). Accepted links have theirs from
// the accept thread.
import BYSTProto
import Glibc
import NIOCore

enum LinkConnector {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        /// The errno, for DialFailureClassifier (refused, timed out).
        let code: Int32

        init(_ what: String, _ code: Int32) {
            description = "\(what): \(String(cString: strerror(code)))"
            self.code = code
        }
    }

    /// The connected descriptor (close-on-exec, non-blocking), or a failure with its reason;
    /// completed on `eventLoop`. Waits at most `timeout` for TCP's answer. With an `uplink`,
    /// the socket leaves through it (bound to its interface and/or source address first).
    static func connect(to address: SocketAddress, via uplink: UplinkConfig? = nil, timeout: Duration,
                        on eventLoop: EventLoop) -> EventLoopFuture<Int32> {
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return eventLoop.makeFailedFuture(Failure("socket", errno)) }
        if let uplink, let failure = bind(fd, family: family, to: uplink) {
            Glibc.close(fd)
            return eventLoop.makeFailedFuture(failure)
        }
        let started = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if started == 0 { return eventLoop.makeSucceededFuture(fd) }
        let code = errno
        guard code == EINPROGRESS else {
            Glibc.close(fd)
            return eventLoop.makeFailedFuture(Failure("connect", code))
        }
        let promise = eventLoop.makePromise(of: Int32.self)
        ConnectWatcher.shared.watch(fd, timeout: timeout, promise: promise)
        return promise.futureResult
    }

    /// Binds `fd` to the uplink's interface and source address; the failure, if any.
    private static func bind(_ fd: Int32, family: Int32, to uplink: UplinkConfig) -> Failure? {
        if let interface = uplink.interface {
            let result = interface.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
            if result != 0 { return Failure("uplink \(uplink.name): bind to interface \(interface)", errno) }
        }
        guard let source = uplink.bind else { return nil }
        let text = IPAddressParser.format(source)
        guard (source.count == 16) == (family == AF_INET6) else {
            return Failure("uplink \(uplink.name): bind \(text) for an IPv\(family == AF_INET6 ? 6 : 4) endpoint", EAFNOSUPPORT)
        }
        do {
            let address = try SocketAddress(ipAddress: text, port: 0)
            let result = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
            if result != 0 { return Failure("uplink \(uplink.name): bind \(text)", errno) }
        } catch {
            return Failure("uplink \(uplink.name): bind \(text)", EINVAL)
        }
        return nil
    }
}
