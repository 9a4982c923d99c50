@testable import Tun

/// The kernel's rtnetlink replies (Tun/Netlink): `u32 sequence ‖ reply bytes`.
/// An ack is nil, an error is a positive errno; anything malformed is EPROTO.
enum NetlinkFuzz {
    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let sequence = input.integer(UInt32.self)
        let reply = input.rest()
        if let code = NetlinkMessage.parseAck(reply, sequence: sequence) {
            invariant(code > 0, "errno \(code) from a reply")
        }
    }
}
