/// Which `[ha] address`es a gateway holds: exactly those of the HA ports it is active for.
/// Pure bookkeeping (keyed by port, so each port's role moves only its own addresses); the
/// netlink and announcement side is `VirtualAddressKeeper`.
struct VirtualAddressPlan {
    /// Each entry with its port filled in.
    let addresses: [HAAddress]
    private(set) var activePorts: Set<String> = []

    /// `defaultPort`: the port of entries written without `port`.
    init(addresses: [HAAddress], defaultPort: String) {
        self.addresses = addresses.map { HAAddress(prefix: $0.prefix, interface: $0.interface, port: $0.port ?? defaultPort) }
    }

    func addresses(of port: String) -> [HAAddress] { addresses.filter { $0.port == port } }

    /// The addresses held now, in config order.
    var held: [HAAddress] { addresses.filter { $0.port.map(activePorts.contains) ?? false } }

    /// `port` became active: the addresses to add (none if it already was).
    mutating func activate(_ port: String) -> [HAAddress] {
        guard activePorts.insert(port).inserted else { return [] }
        return addresses(of: port)
    }

    /// `port` is no longer ours: the addresses to remove (none if it was not active).
    mutating func standDown(_ port: String) -> [HAAddress] {
        guard activePorts.remove(port) != nil else { return [] }
        return addresses(of: port)
    }

    /// Shutting down: every held address, to remove; nothing is held afterwards.
    mutating func releaseAll() -> [HAAddress] {
        let released = held
        activePorts.removeAll()
        return released
    }
}
