import NIOCore
import NIOPosix

/// Turns `host:port` into one socket address without blocking the event loop: IP literals
/// directly, names through getaddrinfo on NIO's thread pool (first address, in the
/// system's RFC 6724 order).
///
/// BYST connects to the one address it gets, never through Happy Eyeballs: those run the
/// channel initializer once per attempt, and our handlers belong to one connection each.
enum AddressResolver {
    static func resolve(_ address: HostPort, on eventLoop: EventLoop) -> EventLoopFuture<SocketAddress> {
        if let literal = try? SocketAddress(ipAddress: address.host, port: Int(address.port)) {
            return eventLoop.makeSucceededFuture(literal)
        }
        let host = address.host
        let port = Int(address.port)
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
    }
}
