import BYSTProto
import Testing
@testable import Tun

/// rtnetlink builders checked byte by byte against the layouts in rtnetlink(7) and
/// linux/rtnetlink.h (the e2e tests then use them on real interfaces).
@Suite struct NetlinkMessageTests {
    @Test func addIPv4AddressLayout() throws {
        let prefix = try #require(IPPrefix("10.0.1.1/24"))
        let message = NetlinkMessage.addAddress(prefix, interface: 7, sequence: 42)
        // nlmsghdr: len, RTM_NEWADDR, REQUEST|ACK|REPLACE|CREATE, seq, pid
        #expect(message.count == 16 + 8 + 8 + 8)
        #expect(Array(message[0..<4]) == [40, 0, 0, 0])
        #expect(Array(message[4..<6]) == [20, 0])
        #expect(Array(message[6..<8]) == [0x05, 0x05])
        #expect(Array(message[8..<12]) == [42, 0, 0, 0])
        // ifaddrmsg: AF_INET, /24, flags, scope, index 7
        #expect(Array(message[16..<24]) == [2, 24, 0, 0, 7, 0, 0, 0])
        // IFA_LOCAL and IFA_ADDRESS, 8 bytes each
        #expect(Array(message[24..<32]) == [8, 0, 2, 0, 10, 0, 1, 1])
        #expect(Array(message[32..<40]) == [8, 0, 1, 0, 10, 0, 1, 1])
    }

    @Test func ipv6AddressSkipsDuplicateDetection() throws {
        let prefix = try #require(IPPrefix("fd00:1::1/64"))
        let message = NetlinkMessage.addAddress(prefix, interface: 3, sequence: 1)
        #expect(Array(message[16..<20]) == [10, 64, 0x02, 0])
        #expect(message.count == 16 + 8 + 20 + 20)
    }

    @Test func routeUsesTheNetworkAddress() throws {
        let prefix = try #require(IPPrefix("10.2.3.4/16"))
        let message = NetlinkMessage.addRoute(prefix, interface: 9, sequence: 5)
        #expect(Array(message[4..<6]) == [24, 0])
        // REQUEST | ACK | EXCL | CREATE: never replaces someone else's route.
        #expect(Array(message[6..<8]) == [0x05, 0x06])
        #expect(Array(message[16..<28]) == [2, 16, 0, 0, 254, 4, 253, 1, 0, 0, 0, 0])
        #expect(Array(message[28..<36]) == [8, 0, 1, 0, 10, 2, 0, 0])
        #expect(Array(message[36..<44]) == [8, 0, 4, 0, 9, 0, 0, 0])
    }

    @Test func linkUpCarriesMTU() {
        let message = NetlinkMessage.setLinkUp(interface: 4, mtu: 1500, sequence: 2)
        #expect(Array(message[4..<6]) == [16, 0])
        #expect(Array(message[16..<32]) == [0, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
        #expect(Array(message[32..<40]) == [8, 0, 4, 0, 0xDC, 0x05, 0, 0])
    }

    @Test func acksAndErrorsAreParsedAndGarbageIsAnError() {
        func reply(seq: UInt32, error: Int32) -> [UInt8] {
            var out: [UInt8] = []
            NetlinkMessage.append(UInt32(36), to: &out)
            NetlinkMessage.append(UInt16(2), to: &out)
            NetlinkMessage.append(UInt16(0), to: &out)
            NetlinkMessage.append(seq, to: &out)
            NetlinkMessage.append(UInt32(0), to: &out)
            NetlinkMessage.append(UInt32(bitPattern: error), to: &out)
            return out + [UInt8](repeating: 0, count: 16)
        }
        #expect(NetlinkMessage.parseAck(reply(seq: 9, error: 0), sequence: 9) == nil)
        #expect(NetlinkMessage.parseAck(reply(seq: 9, error: -17), sequence: 9) == 17)
        #expect(NetlinkMessage.parseAck([1, 2, 3], sequence: 9) == 71)
        var truncated = reply(seq: 9, error: 0)
        truncated[0] = 200
        #expect(NetlinkMessage.parseAck(truncated, sequence: 9) == 71)
    }
}
