import Glibc
import NIOCore

/// Whether a listener could bind its address: a TCP socket with SO_REUSEADDR (as the node's
/// listeners use) bound to the exact address, listening for the moment of the check (never
/// accepting), then closed.
struct BindProbe {
    private var bound: [(address: HostPort, what: String, fd: Int32)] = []

    /// Binds `address` and keeps it bound until `closeAll`, so two settings naming one
    /// address are caught as well; the reason it cannot be bound, else nil.
    mutating func bind(_ address: HostPort, what: String) -> String? {
        let resolved: SocketAddress
        do { resolved = try SocketAddress.makeAddressResolvingHost(address.host, port: Int(address.port)) } catch {
            return "cannot resolve \(address.host): \(error)"
        }
        let fd = socket(resolved.protocol == .inet6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        // Listening too: with SO_REUSEADDR, Linux lets sockets share an address until one listens.
        guard resolved.withSockAddr({ Glibc.bind(fd, $0, socklen_t($1)) }) == 0, listen(fd, 1) == 0 else {
            let code = errno
            Glibc.close(fd)
            var reason = String(cString: strerror(code))
            if code == EADDRINUSE, let other = bound.first(where: { $0.address == address }) {
                reason += " (\(other.what) names it too)"
            } else if code == EADDRINUSE {
                reason += " (another process listens there: ss -ltnp 'sport = :\(address.port)')"
            } else if code == EACCES {
                reason += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            } else if code == EADDRNOTAVAIL {
                reason += " (no interface has this address)"
            }
            return reason
        }
        bound.append((address, what, fd))
        return nil
    }

    mutating func closeAll() {
        for entry in bound { Glibc.close(entry.fd) }
        bound.removeAll()
    }
}
