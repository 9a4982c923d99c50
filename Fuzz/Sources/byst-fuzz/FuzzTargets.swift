/// The fuzz targets by name: each takes one input and traps on a broken invariant.
struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable ([UInt8]) -> Void
}

enum FuzzTargets {
    static let all: [FuzzTarget] = [
        FuzzTarget(name: "link", run: LinkFuzz.run),
        FuzzTarget(name: "record", run: RecordFuzz.run),
        FuzzTarget(name: "session", run: SessionFuzz.run),
        FuzzTarget(name: "http", run: HTTPFuzz.run),
        FuzzTarget(name: "config", run: ConfigFuzz.run),
        FuzzTarget(name: "keys", run: KeyImportFuzz.run),
        FuzzTarget(name: "registry", run: RegistryFuzz.run),
        FuzzTarget(name: "netlink", run: NetlinkFuzz.run),
        FuzzTarget(name: "gso", run: GSOFuzz.run),
    ]

    /// The target named by the first argument (libFuzzer's callback cannot capture it).
    static let selected: FuzzTarget? = {
        let arguments = CommandLine.arguments
        return arguments.count >= 2 ? all.first { $0.name == arguments[1] } : nil
    }()
}
