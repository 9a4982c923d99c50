import BYSTProto
import TOMLKit

/// `[ha]`'s LAN side: virtual addresses and notify commands.
extension ConfigReader {
    /// `address`: each entry's `port`, if given, must be one of `ports` (this node's HA ports);
    /// one address may appear once (two ports holding it would fight over it).
    func readHAAddresses(_ table: TOMLTable, ports: [String], _ context: Context) throws(ConfigError) -> [HAAddress] {
        var addresses: [HAAddress] = []
        for text in try stringArray(table, "address", context) ?? [] {
            let address = try parsed(HAAddress.parse(text), key: "address", value: text, context)
            if let port = address.port, !ports.contains(port) {
                throw error(.invalidValue(key: "address", expected: "a port of this node's [ha] (\(ports.map(\.configQuoted).joined(separator: ", ")))",
                                          got: text.configQuoted), key: "address", context)
            }
            if addresses.contains(where: { $0.prefix.address == address.prefix.address }) {
                throw error(.duplicate(what: "[ha] address", value: text.configQuoted, firstLine: line(of: "address", context)),
                            key: "address", context)
            }
            addresses.append(address)
        }
        return addresses
    }

    func readHANotify(_ table: TOMLTable, into ha: inout HAConfig, _ context: Context) throws(ConfigError) {
        for key in ["on_active", "on_standby"] {
            guard let argv = try stringArray(table, key, context) else { continue }
            guard let program = argv.first else { throw invalid(key, got: "an empty array", context) }
            guard program.hasPrefix("/") else { throw invalid(key, got: "program \(program.configQuoted)", context) }
            if key == "on_active" { ha.onActive = argv } else { ha.onStandby = argv }
        }
        if let timeout = try duration(table, "notify_timeout", context) { ha.notifyTimeout = timeout }
    }
}
