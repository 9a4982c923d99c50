// Reading the kernel's routes (RTM_GETROUTE dump), so `byst check` and `byst up` can tell
// before creating anything which `allowed_ips` the kernel would refuse as `already exists`.
//
//   request: nlmsghdr(RTM_GETROUTE, NLM_F_DUMP) ‖ rtmsg(family)
//   reply:   nlmsghdr(RTM_NEWROUTE) ‖ rtmsg ‖ rtattr … (many, over several reads) … NLMSG_DONE
import BYSTProto
import Glibc

/// One route of the kernel's tables.
public struct KernelRoute: Sendable, Equatable, CustomStringConvertible {
    public var destination: IPPrefix
    /// Output interface index (0: none, e.g. a blackhole or multipath route).
    public var interface: UInt32
    public var table: UInt32
    /// The route's metric (`ip route … metric N`).
    public var priority: UInt32

    public init(destination: IPPrefix, interface: UInt32, table: UInt32, priority: UInt32) {
        self.destination = destination
        self.interface = interface
        self.table = table
        self.priority = priority
    }

    /// The interface's name, if it still exists.
    public var interfaceName: String? {
        guard interface != 0 else { return nil }
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(interface, &name) != nil else { return nil }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String {
        "\(destination)" + (interfaceName.map { " dev \($0)" } ?? "") + (priority == 0 ? "" : " metric \(priority)")
    }
}

public enum RouteTable {
    public static let mainTable: UInt32 = 254
    /// The metric the kernel gives a route added without one: 0 for IPv4, 1024 for IPv6.
    public static func defaultPriority(ipv6: Bool) -> UInt32 { ipv6 ? 1024 : 0 }

    /// Whether `InterfaceConfigurator` would be refused a route to `route`'s destination: it
    /// is in the main table with the metric ours gets (the kernel's NLM_F_EXCL check).
    public static func refusesAdding(over route: KernelRoute) -> Bool {
        route.table == mainTable && route.priority == defaultPriority(ipv6: route.destination.isIPv6)
    }

    /// Every IPv4 and IPv6 route in the kernel's tables.
    public static func read() throws(NetlinkSocket.Failure) -> [KernelRoute] {
        let socket = try NetlinkSocket()
        var routes: [KernelRoute] = []
        for family in [NetlinkMessage.afInet, NetlinkMessage.afInet6] {
            routes += try socket.dumpRoutes(family: family)
        }
        return routes
    }
}

extension NetlinkSocket {
    /// RTM_GETROUTE with NLM_F_DUMP for one address family; reads until NLMSG_DONE.
    func dumpRoutes(family: UInt8) throws(Failure) -> [KernelRoute] {
        sequence &+= 1
        let seq = sequence
        let request = NetlinkMessage.routeDumpRequest(family: family, sequence: seq)
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { throw Failure(operation: "read routes", errno: errno) }
        var routes: [KernelRoute] = []
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read routes (waiting for the kernel)", errno: errno)
            }
            switch NetlinkMessage.parseRouteDump(Array(buffer[0..<n]), sequence: seq) {
            case .more(let batch): routes += batch
            case .done(let batch): return routes + batch
            case .failed(let code): throw Failure(operation: "read routes", errno: code)
            }
        }
    }
}

extension NetlinkMessage {
    static let rtmGetRoute: UInt16 = 26
    static let nlmsgDone: UInt16 = 3
    static let flagDump: UInt16 = 0x300
    static let rtaPriority: UInt16 = 6
    static let rtaTable: UInt16 = 15

    /// RTM_GETROUTE, NLM_F_DUMP: every route of `family`.
    public static func routeDumpRequest(family: UInt8, sequence: UInt32) -> [UInt8] {
        let body: [UInt8] = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        var out: [UInt8] = []
        append(UInt32(16 + body.count), to: &out)
        append(rtmGetRoute, to: &out)
        append(flagRequest | flagDump, to: &out)
        append(sequence, to: &out)
        append(UInt32(0), to: &out)
        return out + body
    }

    public enum RouteDumpPart: Equatable {
        case more([KernelRoute])
        case done([KernelRoute])
        case failed(Int32)
    }

    /// One read of a route dump: its routes, and whether NLMSG_DONE ended it. Messages of
    /// other sequences are skipped; malformed ones are EPROTO.
    public static func parseRouteDump(_ bytes: [UInt8], sequence: UInt32) -> RouteDumpPart {
        var routes: [KernelRoute] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(read(UInt32.self, bytes, offset))
            let type = read(UInt16.self, bytes, offset + 4)
            let seq = read(UInt32.self, bytes, offset + 8)
            guard length >= 16, offset + length <= bytes.count else { return .failed(EPROTOValue) }
            defer { offset += (length + 3) & ~3 }
            guard seq == sequence else { continue }
            switch type {
            case nlmsgDone: return .done(routes)
            case nlmsgError:
                guard length >= 20 else { return .failed(EPROTOValue) }
                let code = Int32(bitPattern: read(UInt32.self, bytes, offset + 16))
                guard code < 0, code != .min else { return .failed(EPROTOValue) }
                return .failed(-code)
            case rtmNewRoute:
                guard length >= 28 else { return .failed(EPROTOValue) }
                if let route = parseRoute(Array(bytes[offset..<(offset + length)])) { routes.append(route) }
            default: continue
            }
        }
        return offset == bytes.count ? .more(routes) : .failed(EPROTOValue)
    }

    /// An RTM_NEWROUTE message (header included); nil for a family or shape we do not route.
    static func parseRoute(_ message: [UInt8]) -> KernelRoute? {
        let family = message[16], destinationLength = Int(message[17])
        guard family == afInet || family == afInet6 else { return nil }
        let size = family == afInet ? 4 : 16
        var address = [UInt8](repeating: 0, count: size)
        var table = UInt32(message[20]), interface: UInt32 = 0, priority: UInt32 = 0
        var offset = 28
        while offset + 4 <= message.count {
            let length = Int(read(UInt16.self, message, offset))
            let type = read(UInt16.self, message, offset + 2)
            guard length >= 4, offset + length <= message.count else { return nil }
            let payload = Array(message[(offset + 4)..<(offset + length)])
            switch type {
            case rtaDestination where payload.count == size: address = payload
            case rtaOutputInterface where payload.count == 4: interface = read(UInt32.self, payload, 0)
            case rtaPriority where payload.count == 4: priority = read(UInt32.self, payload, 0)
            case rtaTable where payload.count == 4: table = read(UInt32.self, payload, 0)
            default: break
            }
            offset += (length + 3) & ~3
        }
        guard let destination = IPPrefix(address: address, length: destinationLength) else { return nil }
        return KernelRoute(destination: destination, interface: interface, table: table, priority: priority)
    }
}
