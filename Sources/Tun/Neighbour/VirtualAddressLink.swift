import BYSTProto
import CTun
import Glibc

/// An HA virtual address on a LAN interface: added and removed through rtnetlink, announced
/// with `NeighbourAnnouncement`s (docs/OPERATIONS.md "High availability").
public enum VirtualAddressLink {
    /// Puts `address` on `interface` (replacing it if already there).
    public static func add(_ address: IPPrefix, interface: String) throws(NetlinkSocket.Failure) {
        let index = try interfaceIndex(interface)
        try NetlinkSocket().request("add address \(address) to \(interface)") {
            NetlinkMessage.addAddress(address, interface: index, sequence: $0)
        }
    }

    /// Takes `address` off `interface`; false if it was not there.
    @discardableResult
    public static func remove(_ address: IPPrefix, interface: String) throws(NetlinkSocket.Failure) -> Bool {
        let index = try interfaceIndex(interface)
        do throws(NetlinkSocket.Failure) {
            try NetlinkSocket().request("remove address \(address) from \(interface)") {
                NetlinkMessage.deleteAddress(address, interface: index, sequence: $0)
            }
            return true
        } catch where error.errno == EADDRNOTAVAIL {
            return false
        }
    }

    /// Sends one announcement of `address` out of `interface`.
    public static func announce(_ address: IPPrefix, interface: String) throws(NetlinkSocket.Failure) {
        let index = try interfaceIndex(interface)
        var mac = [UInt8](repeating: 0, count: 6)
        let found = byst_interface_hwaddr(interface, &mac)
        guard found == 0 else { throw NetlinkSocket.Failure(operation: "link-layer address of \(interface)", errno: -found) }
        let result: Int32
        if address.isIPv6 {
            let message = NeighbourAnnouncement.unsolicitedNA(target: address.address, mac: mac)
            result = message.withUnsafeBytes { byst_send_icmp6_all_nodes(index, $0.baseAddress, UInt($0.count)) }
        } else {
            let message = NeighbourAnnouncement.gratuitousARP(address: address.address, mac: mac)
            result = message.withUnsafeBytes {
                byst_send_link_broadcast(index, NeighbourAnnouncement.etherTypeARP, $0.baseAddress, UInt($0.count))
            }
        }
        guard result == 0 else {
            throw NetlinkSocket.Failure(operation: "announce \(address) on \(interface)", errno: -result)
        }
    }

    static func interfaceIndex(_ name: String) throws(NetlinkSocket.Failure) -> UInt32 {
        let index = if_nametoindex(name)
        guard index != 0 else { throw NetlinkSocket.Failure(operation: "find interface \(name)", errno: errno) }
        return index
    }
}
