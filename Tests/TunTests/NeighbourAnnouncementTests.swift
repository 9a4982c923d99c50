import BYSTProto
import Testing
@testable import Tun

/// The announcements of an HA virtual address, byte by byte against RFC 826/5227 (ARP) and
/// RFC 4861 §4.4 (neighbour advertisement); the e2e test checks a LAN host follows them.
@Suite struct NeighbourAnnouncementTests {
    let mac: [UInt8] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]

    @Test func gratuitousARPNamesTheAddressAsSenderAndTarget() {
        let packet = NeighbourAnnouncement.gratuitousARP(address: [10, 84, 0, 1], mac: mac)
        #expect(packet.count == 28)
        // Ethernet, IPv4, 6-byte MACs, 4-byte addresses, request.
        #expect(Array(packet[0..<8]) == [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01])
        #expect(Array(packet[8..<14]) == mac)
        #expect(Array(packet[14..<18]) == [10, 84, 0, 1])
        #expect(Array(packet[18..<24]) == [0, 0, 0, 0, 0, 0])
        #expect(Array(packet[24..<28]) == [10, 84, 0, 1])
        #expect(NeighbourAnnouncement.etherTypeARP == 0x0806)
    }

    @Test func unsolicitedNeighbourAdvertisementOverridesWithTheMAC() throws {
        let target = try #require(IPPrefix("fd00:84::1/64")).address
        let packet = NeighbourAnnouncement.unsolicitedNA(target: target, mac: mac)
        #expect(packet.count == 32)
        // Type 136, code 0, checksum left to the kernel; router and override set, solicited clear.
        #expect(Array(packet[0..<8]) == [136, 0, 0, 0, 0xa0, 0, 0, 0])
        #expect(Array(packet[8..<24]) == target)
        // Target link-layer address option: type 2, 1 × 8 bytes.
        #expect(Array(packet[24..<26]) == [2, 1])
        #expect(Array(packet[26..<32]) == mac)
    }

    @Test func deleteAddressMirrorsAdd() throws {
        let prefix = try #require(IPPrefix("10.84.0.1/24"))
        let message = NetlinkMessage.deleteAddress(prefix, interface: 7, sequence: 9)
        // nlmsghdr: RTM_DELADDR, REQUEST|ACK only.
        #expect(Array(message[0..<4]) == [40, 0, 0, 0])
        #expect(Array(message[4..<6]) == [21, 0])
        #expect(Array(message[6..<8]) == [0x05, 0x00])
        #expect(Array(message[16..<24]) == [2, 24, 0, 0, 7, 0, 0, 0])
        #expect(Array(message[24..<40]) == [8, 0, 2, 0, 10, 84, 0, 1, 8, 0, 1, 0, 10, 84, 0, 1])
        let v6 = NetlinkMessage.deleteAddress(try #require(IPPrefix("fd00::1/64")), interface: 3, sequence: 1)
        #expect(Array(v6[16..<20]) == [10, 64, 0, 0])
    }
}
