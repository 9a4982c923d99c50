// Connects a plain link's TCP socket ourselves, then gives it to NIO:
//
//   socket + non-blocking connect (on the loop: it returns at once)
//     ─▶ a dispatch write source waits for TCP's answer, a deadline for its absence (no thread blocks)
//     ─▶ event loop: ClientBootstrap.withConnectedSocket(fd); the link duplicates it once established
//
// Why not ClientBootstrap.connect: NIO does not show a channel's descriptor, and a plain link
// writes records on it directly (LinkSocket); and an uplink binds the socket before it connects.
// Every dialed link connects here (plain, HTTP, split POSTs). Accepted links have theirs from
// the accept thread.
import BYSTProto
import Dispatch
import Glibc
import NIOCore
import Synchronization

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

    /// Where connects in progress are watched and decided; serial, so a socket's answer and
    /// its deadline never race.
    private static let queue = DispatchQueue(label: "byst.link-connector")

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
        Pending(fd: fd, promise: promise).watch(timeout: timeout)
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

    /// One connect in progress: decided once, by the socket turning writable or by the deadline.
    /// Unchecked: `source` is a dispatch object, safe to use from any thread, which Dispatch
    /// does not mark `Sendable` on Linux; the mutable state is `outcome`, under its mutex.
    private final class Pending: @unchecked Sendable {
        let fd: Int32
        let promise: EventLoopPromise<Int32>
        private let source: any DispatchSourceWrite
        /// Nil until decided; then nil failure: connected.
        private let outcome = Mutex<Failure??>(nil)

        init(fd: Int32, promise: EventLoopPromise<Int32>) {
            self.fd = fd
            self.promise = promise
            source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: LinkConnector.queue)
        }

        func watch(timeout: Duration) {
            source.setEventHandler { [self] in
                var code: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0 { code = errno }
                decide(code == 0 ? nil : Failure("connect", code))
            }
            // The descriptor is handed on (or closed) only here, once the source has let go of it.
            source.setCancelHandler { [self] in
                guard case .some(let failure) = outcome.withLock({ $0 }) else { return }
                if let failure {
                    Glibc.close(fd)
                    promise.fail(failure)
                } else {
                    promise.succeed(fd)
                }
            }
            LinkConnector.queue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: timeout.nanoseconds))) { [self] in
                decide(Failure("connect", ETIMEDOUT))
            }
            source.resume()
        }

        /// On `LinkConnector.queue`: the first answer wins.
        private func decide(_ failure: Failure?) {
            let first = outcome.withLock { outcome -> Bool in
                guard outcome == nil else { return false }
                outcome = .some(failure)
                return true
            }
            if first { source.cancel() }
        }
    }
}
