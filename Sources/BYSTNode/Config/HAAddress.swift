import BYSTProto

/// One `[ha] address` entry: a LAN-side virtual address this gateway holds while it is
/// active for `port` ("High availability" in docs/OPERATIONS.md), written
/// `"PREFIX dev IFACE"` or `"PREFIX dev IFACE port NAME"`.
///
/// **Invariants** (from `parse`): `prefix` is an address with its prefix length, host bits
/// kept; `interface` satisfies `TunConfig.isValidInterfaceName`; `port`, when set, satisfies
/// `RegistryService.isValidName` (the loader checks it names an HA port of this node).
public struct HAAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address and its prefix length, as `ip addr add` takes it ("10.84.0.1/24").
    public var prefix: IPPrefix
    public var interface: String
    /// The HA port whose role the address follows; nil: the node's first (only) HA port.
    public var port: String?

    public init(prefix: IPPrefix, interface: String, port: String? = nil) {
        self.prefix = prefix
        self.interface = interface
        self.port = port
    }

    public var description: String {
        "\(prefix) dev \(interface)" + (port.map { " port \($0)" } ?? "")
    }

    static let expected = "an array of \"ADDRESS/LENGTH dev INTERFACE\" strings (optionally followed by \" port NAME\"), like \"10.84.0.1/24 dev eth1\""

    /// `PREFIX dev IFACE [port NAME]`, words separated by spaces. A bare address without a
    /// length is refused: the length decides the subnet route the kernel adds with it.
    static func parse(_ text: String) -> Result<HAAddress, ValueProblem> {
        let words = text.split(separator: " ").map(String.init)
        guard words.count == 3 || words.count == 5, words[1] == "dev", words[0].contains("/"),
              let prefix = IPPrefix(words[0]), TunConfig.isValidInterfaceName(words[2])
        else { return .failure(.invalid(expected: expected)) }
        var port: String?
        if words.count == 5 {
            guard words[3] == "port", RegistryService.isValidName(words[4]) else { return .failure(.invalid(expected: expected)) }
            port = words[4]
        }
        return .success(HAAddress(prefix: prefix, interface: words[2], port: port))
    }
}
