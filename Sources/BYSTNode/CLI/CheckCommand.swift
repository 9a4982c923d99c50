import ArgumentParser

/// `byst check`: what `byst up` would run, and everything that would stop it, without
/// creating or binding anything lasting. Exit 0: `up` would start; 1: it would not.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a config as `byst up` would, without starting anything.",
        discussion: """
            Checks the config, the key store and the keys it names, TLS and etcd files, the control
            socket directory, the listen addresses (bound and closed at once), the [tun] name,
            CAP_NET_ADMIN, and routes the peers' allowed_ips would collide with; then prints what
            would run and the problems, each with its file:line.
            Exit status: 0 if `byst up` would start, 1 if not (warnings alone do not count), 64 for
            a bad command line.
            """)

    @Option(name: [.short, .customLong("config")], help: "Config file.") var config = "/etc/byst/byst.toml"

    func run() throws {
        let text: String
        let nodeConfig: NodeConfig
        do throws(ConfigError) {
            text = try readConfigText(path: config)
            nodeConfig = try NodeConfig.load(path: config)
        } catch {
            print("problems (1):\n  \(error)\nbyst up would refuse to start")
            throw ExitCode(1)
        }
        let keys = Result { () throws(KeyStore.Failure) in try KeyStore.load(path: nodeConfig.keyStore) }
        for line in CheckSummary.lines(nodeConfig, file: config, keyCount: try? keys.get().entries.count) { print(line) }
        let problems = Preflight.problems(nodeConfig, file: config, text: text, keys: keys)
        let errors = problems.filter { $0.severity == .error }.count
        if problems.isEmpty {
            print("no problems found")
        } else {
            print("problems (\(problems.count)):")
            for problem in problems { print("  \(problem)") }
        }
        guard errors == 0 else {
            print("byst up would refuse to start (\(errors) problem\(errors == 1 ? "" : "s"))")
            throw ExitCode(1)
        }
        print("byst up would start")
    }
}
