import BYSTProto
import Glibc
import Testing
@testable import Tun

/// The route dump's parser, on messages built as the kernel lays them out (rtnetlink(7)).
@Suite struct RouteTableTests {
    func routeMessage(family: UInt8, destination: [UInt8], length: UInt8, oif: UInt32, priority: UInt32?, table: UInt32, sequence: UInt32) -> [UInt8] {
        var body: [UInt8] = [family, length, 0, 0, UInt8(min(table, 252)), 4, 0, 1]
        NetlinkMessage.append(UInt32(0), to: &body)
        if length > 0 { NetlinkMessage.appendAttribute(NetlinkMessage.rtaDestination, destination, to: &body) }
        var bytes: [UInt8] = []
        NetlinkMessage.append(oif, to: &bytes)
        NetlinkMessage.appendAttribute(NetlinkMessage.rtaOutputInterface, bytes, to: &body)
        if let priority {
            bytes = []
            NetlinkMessage.append(priority, to: &bytes)
            NetlinkMessage.appendAttribute(NetlinkMessage.rtaPriority, bytes, to: &body)
        }
        bytes = []
        NetlinkMessage.append(table, to: &bytes)
        NetlinkMessage.appendAttribute(NetlinkMessage.rtaTable, bytes, to: &body)
        var message = NetlinkMessage.message(type: NetlinkMessage.rtmNewRoute, flags: 0, sequence: sequence, body: body)
        message[6] = 2  // NLM_F_MULTI, as in a dump
        return message
    }

    @Test func dumpRequestLayout() {
        let request = NetlinkMessage.routeDumpRequest(family: 2, sequence: 9)
        #expect(request.count == 28)
        #expect(request[4] == 26 && request[5] == 0)  // RTM_GETROUTE
        #expect(request[6] == 0x01 && request[7] == 0x03)  // NLM_F_REQUEST | NLM_F_DUMP
        #expect(request[16] == 2)
    }

    @Test func parsesRoutesUntilDone() throws {
        let lan = routeMessage(family: 2, destination: [192, 168, 7, 0], length: 24, oif: 3, priority: nil, table: 254, sequence: 5)
        let v6 = routeMessage(family: 10, destination: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12), length: 32,
                              oif: 4, priority: 1024, table: 254, sequence: 5)
        let other = routeMessage(family: 2, destination: [10, 0, 0, 0], length: 8, oif: 3, priority: nil, table: 254, sequence: 6)
        let first = NetlinkMessage.parseRouteDump(lan + v6 + other, sequence: 5)
        #expect(first == .more([KernelRoute(destination: try #require(IPPrefix("192.168.7.0/24")), interface: 3, table: 254, priority: 0),
                                KernelRoute(destination: try #require(IPPrefix("2001:db8::/32")), interface: 4, table: 254, priority: 1024)]))
        let done = NetlinkMessage.message(type: 3, flags: 0, sequence: 5, body: [0, 0, 0, 0])
        #expect(NetlinkMessage.parseRouteDump(done, sequence: 5) == .done([]))
        var error = NetlinkMessage.message(type: 2, flags: 0, sequence: 5, body: [])
        NetlinkMessage.append(Int32(-EPERM), to: &error)
        error[0] = UInt8(error.count)
        #expect(NetlinkMessage.parseRouteDump(error, sequence: 5) == .failed(EPERM))
        #expect(NetlinkMessage.parseRouteDump(Array(lan.prefix(20)), sequence: 5) == .failed(71))
    }

    @Test func readsTheKernelsRoutes() throws {
        // Every Linux host has its loopback routes in the local table.
        let routes = try RouteTable.read()
        #expect(routes.contains { $0.destination == IPPrefix("127.0.0.1/32") && $0.table == 255 })
    }
}
