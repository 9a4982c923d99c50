import BYSTNode

/// The TOML config (ConfigLoader): any text is a config or a ConfigError, never a crash.
/// Bytes that are not UTF-8 are refused before parsing by `load`; here they become U+FFFD.
enum ConfigFuzz {
    static func run(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        guard let config = try? NodeConfig.parse(text, file: "fuzz.toml") else { return }
        // Parsing is a pure function of the text.
        let again = try? NodeConfig.parse(text, file: "fuzz.toml")
        invariant(again != nil, "a config parsed once and not twice")
        invariant(config.peers.count == again?.peers.count, "a config parsed two ways")
    }
}
