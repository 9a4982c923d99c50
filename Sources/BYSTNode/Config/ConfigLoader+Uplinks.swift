import BYSTProto
import TOMLKit

/// `[[peer]] uplinks` (docs/OPERATIONS.md, "Several uplinks"): inline tables, each a way out
/// of this machine that some of the peer's links are dialed through.
extension ConfigReader {
    func readUplinks(_ table: TOMLTable, into peer: inout PeerConfig, _ context: Context) throws(ConfigError) {
        guard let value = lookup(table, "uplinks", context) else { return }
        let expected = ConfigSchema.peer["uplinks"].expected
        guard let array = value.array else {
            throw error(.wrongType(key: "uplinks", expected: expected, got: describeType(value)), key: "uplinks", context)
        }
        guard peer.endpoint != nil else {
            throw error(.invalidValue(key: "uplinks", expected: "set only with an endpoint (uplinks carry the links we dial)",
                                      got: "no endpoint"), key: "uplinks", context)
        }
        if let links = lookup(table, "links", context) {
            throw error(.invalidValue(key: "links", expected: "not set with uplinks (each uplink sets its own links)",
                                      got: describeType(links)), key: "links", context)
        }
        guard !array.isEmpty else {
            throw error(.invalidValue(key: "uplinks", expected: expected, got: "an empty array"), key: "uplinks", context)
        }
        var uplinks: [UplinkConfig] = []
        for (index, element) in array.enumerated() {
            guard let entry = element.table else {
                throw error(.wrongType(key: "uplinks", expected: expected, got: "an array holding \(describeType(element))"),
                            key: "uplinks", context)
            }
            var entryContext = Context(schema: ConfigSchema.uplink, index: context.index,
                                       section: "\(context.section) uplinks #\(index + 1)", headersMatch: context.headersMatch)
            entryContext.table = context.table
            entryContext.lineKey = "uplinks"
            let uplink = try readUplink(entry, entryContext)
            guard !uplinks.contains(where: { $0.name == uplink.name }) else {
                throw error(.duplicate(what: "uplink name", value: uplink.name.configQuoted, firstLine: nil), key: "uplinks", context)
            }
            uplinks.append(uplink)
        }
        let total = uplinks.reduce(0) { $0 + $1.links }
        guard PeerConfig.linksRange.contains(total) else {
            throw error(.invalidValue(key: "uplinks", expected: "at most \(PeerConfig.linksRange.upperBound) links in all",
                                      got: "\(total)"), key: "uplinks", context)
        }
        peer.uplinks = uplinks
        peer.links = total
    }

    private func readUplink(_ table: TOMLTable, _ context: Context) throws(ConfigError) -> UplinkConfig {
        try checkKeys(table, context)
        var bind: [UInt8]?
        if let text = try optionalString(table, "bind", context) {
            guard let address = IPAddressParser.parse(text) else { throw invalid("bind", got: text.configQuoted, context) }
            bind = address
        }
        let interface = try optionalString(table, "interface", context)
        if let interface, !TunConfig.isValidInterfaceName(interface) { throw invalid("interface", got: interface.configQuoted, context) }
        guard let fallbackName = interface ?? bind.map(IPAddressParser.format) else {
            throw error(.invalidValue(key: "uplinks", expected: "bind, interface or both in each uplink", got: "neither"),
                        key: "uplinks", context)
        }
        let name = try optionalString(table, "name", context) ?? fallbackName
        guard KeyStore.isValidName(name) || name == fallbackName else { throw invalid("name", got: name.configQuoted, context) }
        return UplinkConfig(name: name, bind: bind, interface: interface, links: try integer(table, "links", context) ?? 1)
    }
}
