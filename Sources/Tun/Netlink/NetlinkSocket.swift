import CTun
import BYSTProto
import Glibc

/// A NETLINK_ROUTE socket that sends one request at a time and waits for its ack.
public final class NetlinkSocket {
    let fd: Int32
    var sequence: UInt32 = 1

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let operation: String
        public let errno: Int32
        public var description: String {
            let reason = switch errno {
            case EPERM: "operation not permitted (need root or CAP_NET_ADMIN)"
            case EEXIST: "already exists (another interface has this route: remove it or narrow allowed_ips)"
            default: String(cString: strerror(errno))
            }
            return "\(operation): \(reason)"
        }
    }

    public init() throws(Failure) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard fd >= 0 else { throw Failure(operation: "netlink socket", errno: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends a request built for `sequence` and waits for the kernel's ack.
    public func request(_ operation: String, _ build: (UInt32) -> [UInt8]) throws(Failure) {
        sequence &+= 1
        let seq = sequence
        let message = build(seq)
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let sent = message.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == message.count else { throw Failure(operation: operation, errno: errno) }
        var reply = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "\(operation) (waiting for the kernel)", errno: errno)
            }
            let code = NetlinkMessage.parseAck(Array(reply[0..<n]), sequence: seq)
            if let code { throw Failure(operation: operation, errno: code) }
            return
        }
    }
}

/// Configures a TUN interface the way `ip` would — addresses, MTU, up, routes — through
/// rtnetlink (no shelling out).
public enum InterfaceConfigurator {
    public static func configure(
        interface name: String, addresses: [IPPrefix], mtu: Int, routes: [IPPrefix]
    ) throws(NetlinkSocket.Failure) {
        let index = if_nametoindex(name)
        guard index != 0 else { throw NetlinkSocket.Failure(operation: "find interface \(name)", errno: errno) }
        let socket = try NetlinkSocket()
        quietLinkLocal(interface: name)
        try socket.request("set \(name) mtu \(mtu) up") { NetlinkMessage.setLinkUp(interface: index, mtu: UInt32(mtu), sequence: $0) }
        for address in addresses {
            try socket.request("add address \(address) to \(name)") {
                NetlinkMessage.addAddress(address, interface: index, sequence: $0)
            }
        }
        try updateRoutes(interface: name, addresses: addresses, adding: routes, removing: [], socket: socket)
    }

    /// Before the interface goes up: no IPv6 link-local address (`addr_gen_mode` 1, none) —
    /// a tunnel has no neighbours to discover, and the kernel would otherwise send router
    /// solicitations, MLD reports and redirects from fe80:: into it, which peers drop as
    /// spoofed — and no IPv4 redirects from it (effective where `all/send_redirects` is 0
    /// too; the node drops the others, `IPPacket.isLinkScoped`). Best effort: a missing file
    /// (IPv6 disabled) or a refused write changes nothing else.
    static func quietLinkLocal(interface name: String) {
        for (path, value) in [("/proc/sys/net/ipv6/conf/\(name)/addr_gen_mode", "1"), ("/proc/sys/net/ipv4/conf/\(name)/send_redirects", "0")] {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            _ = value.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
            close(fd)
        }
    }

    /// Caps the GSO super-packets the kernel builds for the interface at `size` bytes.
    public static func setGSOMaxSize(interface name: String, size: Int) throws(NetlinkSocket.Failure) {
        let index = if_nametoindex(name)
        guard index != 0 else { throw NetlinkSocket.Failure(operation: "find interface \(name)", errno: errno) }
        try NetlinkSocket().request("set \(name) gso_max_size \(size)") {
            NetlinkMessage.setGSOMaxSize(interface: index, size: UInt32(size), sequence: $0)
        }
    }

    /// Adds and removes routes through the interface (config reload); the kernel already routes
    /// each address's own subnet to it, so those are skipped.
    public static func updateRoutes(
        interface name: String, addresses: [IPPrefix], adding: [IPPrefix], removing: [IPPrefix], socket: NetlinkSocket? = nil
    ) throws(NetlinkSocket.Failure) {
        let index = if_nametoindex(name)
        guard index != 0 else { throw NetlinkSocket.Failure(operation: "find interface \(name)", errno: errno) }
        let netlink: NetlinkSocket
        if let socket { netlink = socket } else { netlink = try NetlinkSocket() }
        let connected = Set(addresses.map(\.network))
        var done = Set<IPPrefix>()
        for route in removing where !connected.contains(route.network) && done.insert(route.network).inserted {
            try netlink.request("remove route \(route.network) via \(name)") {
                NetlinkMessage.deleteRoute(route, interface: index, sequence: $0)
            }
        }
        done.removeAll()
        for route in adding where !connected.contains(route.network) && done.insert(route.network).inserted {
            try netlink.request("add route \(route.network) via \(name)") {
                NetlinkMessage.addRoute(route, interface: index, sequence: $0)
            }
        }
    }
}
