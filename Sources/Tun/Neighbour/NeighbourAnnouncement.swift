// The unsolicited announcements that move a LAN's idea of who holds an address (an HA
// gateway's virtual address): pure bytes, so they are unit-tested.
//
//   IPv4, gratuitous ARP request (RFC 5227 §3 "ARP Announcement"), after the Ethernet header:
//     htype 1 ‖ ptype 0x0800 ‖ hlen 6 ‖ plen 4 ‖ oper 1 ‖ sha MAC ‖ spa IP ‖ tha 0 ‖ tpa IP
//   IPv6, unsolicited neighbour advertisement (RFC 4861 §4.4, §7.2.6), to ff02::1:
//     type 136 ‖ code 0 ‖ checksum (kernel) ‖ flags R|O ‖ 3 reserved ‖ target ‖
//     option 2 (target link-layer address) ‖ length 1 ‖ MAC
// Neighbours that already have an entry for the address replace its MAC (Linux does so
// for gratuitous ARP whatever `arp_accept` says); others learn it when they next ask.
import BYSTProto

public enum NeighbourAnnouncement {
    public static let etherTypeARP: UInt16 = 0x0806

    /// A gratuitous ARP request announcing that `address` (4 bytes) is at `mac`.
    public static func gratuitousARP(address: [UInt8], mac: [UInt8]) -> [UInt8] {
        precondition(address.count == 4 && mac.count == 6)
        return [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01] + mac + address + [UInt8](repeating: 0, count: 6) + address
    }

    /// An unsolicited neighbour advertisement for `target` (16 bytes) at `mac`: override set
    /// (replace cached entries), solicited clear, router set (a gateway forwards; a clear
    /// flag would make hosts drop it from their default routers).
    public static func unsolicitedNA(target: [UInt8], mac: [UInt8]) -> [UInt8] {
        precondition(target.count == 16 && mac.count == 6)
        let routerAndOverride: UInt8 = 0x80 | 0x20
        return [136, 0, 0, 0, routerAndOverride, 0, 0, 0] + target + [2, 1] + mac
    }
}
