// rtnetlink request builders (rtnetlink(7)): pure bytes, no socket, so they are unit-tested.
//
//   nlmsghdr(16) ‖ family header (ifaddrmsg 8 / ifinfomsg 16 / rtmsg 12) ‖ rtattr …
//
// All integers are in host byte order (little-endian on the platforms BYST supports).
import BYSTProto

public enum NetlinkMessage {
    // Message types and flags (linux/rtnetlink.h, linux/netlink.h).
    static let rtmNewLink: UInt16 = 16
    static let rtmNewAddr: UInt16 = 20
    static let rtmDelAddr: UInt16 = 21
    static let rtmNewRoute: UInt16 = 24
    static let rtmDelRoute: UInt16 = 25
    static let nlmsgError: UInt16 = 2
    static let flagRequest: UInt16 = 0x1
    static let flagAck: UInt16 = 0x4
    static let flagReplace: UInt16 = 0x100
    static let flagExclusive: UInt16 = 0x200
    static let flagCreate: UInt16 = 0x400
    // Attributes.
    static let ifaAddress: UInt16 = 1
    static let ifaLocal: UInt16 = 2
    static let iflaMTU: UInt16 = 4
    static let iflaGSOMaxSize: UInt16 = 41
    static let rtaDestination: UInt16 = 1
    static let rtaOutputInterface: UInt16 = 4
    // Address families and route constants.
    static let afInet: UInt8 = 2
    static let afInet6: UInt8 = 10
    static let ifaFlagNoDAD: UInt8 = 0x02  // IPv6: usable at once, no duplicate detection
    static let iffUp: UInt32 = 0x1
    static let routeTableMain: UInt8 = 254
    static let routeProtocolStatic: UInt8 = 4
    static let routeScopeLink: UInt8 = 253
    static let routeTypeUnicast: UInt8 = 1

    /// RTM_NEWADDR: put `address` (with its prefix length) on interface `index`.
    public static func addAddress(_ address: IPPrefix, interface index: UInt32, sequence: UInt32) -> [UInt8] {
        var body: [UInt8] = [address.isIPv6 ? afInet6 : afInet, UInt8(address.length),
                             address.isIPv6 ? ifaFlagNoDAD : 0, 0]
        append(index, to: &body)
        appendAttribute(ifaLocal, address.address, to: &body)
        appendAttribute(ifaAddress, address.address, to: &body)
        return message(type: rtmNewAddr, flags: flagCreate | flagReplace, sequence: sequence, body: body)
    }

    /// RTM_DELADDR: remove `address` (with its prefix length) from interface `index`.
    public static func deleteAddress(_ address: IPPrefix, interface index: UInt32, sequence: UInt32) -> [UInt8] {
        var body: [UInt8] = [address.isIPv6 ? afInet6 : afInet, UInt8(address.length), 0, 0]
        append(index, to: &body)
        appendAttribute(ifaLocal, address.address, to: &body)
        appendAttribute(ifaAddress, address.address, to: &body)
        return message(type: rtmDelAddr, flags: 0, sequence: sequence, body: body)
    }

    /// RTM_NEWLINK: set the MTU and bring interface `index` up.
    public static func setLinkUp(interface index: UInt32, mtu: UInt32, sequence: UInt32) -> [UInt8] {
        var body: [UInt8] = [0, 0, 0, 0]  // family AF_UNSPEC, pad, type
        append(index, to: &body)
        append(iffUp, to: &body)  // flags
        append(iffUp, to: &body)  // change mask
        var mtuBytes: [UInt8] = []
        append(mtu, to: &mtuBytes)
        appendAttribute(iflaMTU, mtuBytes, to: &body)
        return message(type: rtmNewLink, flags: 0, sequence: sequence, body: body)
    }

    /// RTM_NEWLINK: the largest GSO super-packet the kernel builds for interface `index`
    /// (IFLA_GSO_MAX_SIZE), so that one fits in a record.
    public static func setGSOMaxSize(interface index: UInt32, size: UInt32, sequence: UInt32) -> [UInt8] {
        var body: [UInt8] = [0, 0, 0, 0]
        append(index, to: &body)
        append(UInt32(0), to: &body)  // flags
        append(UInt32(0), to: &body)  // change mask
        var sizeBytes: [UInt8] = []
        append(size, to: &sizeBytes)
        appendAttribute(iflaGSOMaxSize, sizeBytes, to: &body)
        return message(type: rtmNewLink, flags: 0, sequence: sequence, body: body)
    }

    /// RTM_NEWROUTE: route `prefix` out of interface `index` (main table, link scope).
    /// Exclusive: an existing route for the same prefix (say, a LAN's) is never taken over;
    /// the kernel answers EEXIST instead. Our own routes vanish with the TUN device.
    public static func addRoute(_ prefix: IPPrefix, interface index: UInt32, sequence: UInt32) -> [UInt8] {
        route(type: rtmNewRoute, flags: flagCreate | flagExclusive, prefix, interface: index, sequence: sequence)
    }

    /// RTM_DELROUTE: remove our route for `prefix` out of interface `index` (a reload dropped it).
    public static func deleteRoute(_ prefix: IPPrefix, interface index: UInt32, sequence: UInt32) -> [UInt8] {
        route(type: rtmDelRoute, flags: 0, prefix, interface: index, sequence: sequence)
    }

    static func route(type: UInt16, flags: UInt16, _ prefix: IPPrefix, interface index: UInt32, sequence: UInt32) -> [UInt8] {
        let network = prefix.network
        var body: [UInt8] = [network.isIPv6 ? afInet6 : afInet, UInt8(network.length), 0, 0,
                             routeTableMain, routeProtocolStatic, routeScopeLink, routeTypeUnicast]
        append(UInt32(0), to: &body)  // rtm_flags
        appendAttribute(rtaDestination, network.address, to: &body)
        var oif: [UInt8] = []
        append(index, to: &oif)
        appendAttribute(rtaOutputInterface, oif, to: &body)
        return message(type: type, flags: flags, sequence: sequence, body: body)
    }

    static func message(type: UInt16, flags: UInt16, sequence: UInt32, body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        append(UInt32(16 + body.count), to: &out)
        append(type, to: &out)
        append(flags | flagRequest | flagAck, to: &out)
        append(sequence, to: &out)
        append(UInt32(0), to: &out)  // port id: the kernel
        return out + body
    }

    static func appendAttribute(_ type: UInt16, _ payload: [UInt8], to out: inout [UInt8]) {
        append(UInt16(4 + payload.count), to: &out)
        append(type, to: &out)
        out += payload
        while out.count % 4 != 0 { out.append(0) }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    /// Parses the kernel's reply to one request: nil for an ack, else the errno it reports.
    /// Malformed replies are reported as EPROTO.
    public static func parseAck(_ reply: [UInt8], sequence: UInt32) -> Int32? {
        var offset = 0
        while offset + 16 <= reply.count {
            let length = Int(read(UInt32.self, reply, offset))
            let type = read(UInt16.self, reply, offset + 4)
            let seq = read(UInt32.self, reply, offset + 8)
            guard length >= 16, offset + length <= reply.count else { return EPROTOValue }
            if type == nlmsgError, seq == sequence {
                guard length >= 20 else { return EPROTOValue }
                let code = Int32(bitPattern: read(UInt32.self, reply, offset + 16))
                // The kernel sends 0 or a negative errno; anything else (a positive code, or
                // Int32.min, whose negation traps) is malformed.
                guard code <= 0, code != .min else { return EPROTOValue }
                return code == 0 ? nil : -code
            }
            offset += (length + 3) & ~3
        }
        return EPROTOValue
    }

    static let EPROTOValue: Int32 = 71

    static func read<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + index]) << (8 * index) }
        return value
    }
}
