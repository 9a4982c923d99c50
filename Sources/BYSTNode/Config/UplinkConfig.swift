import BYSTProto

/// One entry of `[[peer]] uplinks`: a way out of this machine (a second ISP, an LTE modem)
/// that some of the peer's links are dialed through (docs/OPERATIONS.md, "Several uplinks").
///
/// **Invariants** (from the loader): `bind` or `interface` is set (or both); `links` is at
/// least 1; names are unique within the peer, and the peer's `links` is the sum over its uplinks.
public struct UplinkConfig: Sendable, Equatable {
    /// How status, metrics and logs name it: `name`, else the interface or the bind address.
    public var name: String
    /// Source address (4 or 16 bytes) the links' sockets bind to before connecting: the
    /// kernel then routes them by source (policy routing), as a multi-WAN router does.
    public var bind: [UInt8]?
    /// Interface the links' sockets are bound to (`SO_BINDTODEVICE`): they leave through it
    /// whatever the routing table prefers.
    public var interface: String?
    /// Links dialed through this uplink.
    public var links: Int

    public init(name: String, bind: [UInt8]? = nil, interface: String? = nil, links: Int = 1) {
        self.name = name
        self.bind = bind
        self.interface = interface
        self.links = links
    }

    /// `dsl (bind 192.0.2.10, 2 links)`.
    public var summary: String {
        let via = [bind.map { "bind \(IPAddressParser.format($0))" }, interface.map { "interface \($0)" }].compactMap { $0 }
        return "\(name) (\(via.joined(separator: ", ")), \(links) link\(links == 1 ? "" : "s"))"
    }

    /// The uplink of each of a peer's link slots, in slot order: the first uplink's links
    /// come first. Empty when the peer has no uplinks (its links go out as routing says).
    public static func perSlot(_ uplinks: [UplinkConfig]) -> [UplinkConfig] {
        uplinks.flatMap { Array(repeating: $0, count: $0.links) }
    }
}
