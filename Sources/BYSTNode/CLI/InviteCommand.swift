import ArgumentParser
import BYSTProto
import Glibc

/// `byst invite NAME`, run on a hub: adds the branch NAME as a `[[peer]]` with a fresh key
/// and prints the one secret line `byst join` turns into the branch's key store and config
/// (docs/OPERATIONS.md, "Invitations").
struct InviteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite",
        abstract: "Add a branch to this hub with a fresh key, and print the line for its `byst join`.",
        discussion: """
            Adds a [[peer]] NAME to the config file (as byst peer add does) and a new key NAME to the \
            hub's key store, then prints one bystinv1_… line on standard output: the key, the hub's \
            name, the endpoints to dial, the branch's name, TUN addresses and routes. The line is a \
            secret. On the branch: byst join (paste it), or byst join --file FILE (mode 0600). \
            The branch may not make the hub connect anywhere unless --allow-targets says so.
            """)

    @Argument(help: "Name of the branch: its [node] name, and its [[peer]] and key name here.") var name: String
    @Option(name: .customLong("endpoint"),
            help: "Where the branch dials this hub: byst://host:port or http(s)://…; repeat for more (the first is used, the others listed).")
    var endpoints: [String] = []
    @Option(name: .customLong("address"),
            help: "The branch's TUN address, like 10.0.0.2/24, or 10.0.0.2 for the length of this hub's tunnel subnet; repeat for IPv6.")
    var addresses: [String] = []
    @Option(name: .customLong("allowed-ips"),
            help: "Prefixes behind the branch (its LAN) that this hub routes to it, comma-separated; its TUN addresses are added.")
    var allowedIPs: [String] = []
    @Option(help: "Prefixes behind this hub that the branch routes to it, comma-separated; this hub's tunnel subnets are added.")
    var routes: [String] = []
    @Option(help: "Parallel links the branch opens, 1…64 (default \(PeerConfig.defaultLinks)).") var links: Int?
    @Option(name: .customLong("allow-targets"),
            help: "What the branch may make this hub connect to (port forwards), comma-separated host:port; none by default.")
    var allowTargets: [String] = []
    @Option(help: "On a node running `byst registry serve`: the HA ports the branch may own, comma-separated; none by default.")
    var ports: String?
    @Option(name: .customLong("hub-name"), help: "The branch's name for this hub (default: this node's [node] name).")
    var hubName: String?
    @Option(name: [.customShort("o"), .customLong("output")],
            help: "Write the line to this new file (mode 0600) instead of standard output.")
    var output: String?
    @OptionGroup var config: ConfigFileOptions

    func run() throws {
        let hub = try config.load()
        var builder = InvitationBuilder(branchName: name, hubName: hubName, endpoints: try endpoints.map(PeerArguments.endpoint))
        builder.links = links ?? PeerConfig.defaultLinks
        builder.addresses = addresses
        builder.allowedIPs = try allowedIPs.flatMap { try PeerArguments.prefixes($0) }
        builder.routes = try routes.flatMap { try PeerArguments.prefixes($0, option: "--routes") }
        builder.allowTargets = try allowTargets.flatMap(PeerArguments.targets)
        builder.ports = ports.map(PeerArguments.names) ?? []
        let plan: InvitationBuilder.Plan
        do throws(InvitationBuilder.Refusal) { plan = try builder.plan(hub: hub) } catch { throw CLIError(error.description) }

        // Everything that can be refused is refused before anything is written.
        try PeerArguments.add(plan.peer, toConfig: config.path, dryRun: true)
        if let output, (try? AtomicFile.mode(output)) != nil {
            throw CLIError("\(output) exists: refusing to overwrite it with an invitation".escapingControlCharacters())
        }
        var store: KeyStore
        do { store = try KeyStore.load(path: hub.keyStore) } catch { throw CLIError(error.description) }
        guard store.entry(named: name) == nil else {
            throw CLIError("a key named '\(name)' already exists in \(store.path); an invitation brings a fresh key "
                + "(remove the old one first with: byst key rm \(name) --store \(store.path))")
        }
        let key: PreSharedKey
        do { key = try .generate() } catch { throw CLIError("cannot generate a key: \(error)") }
        let invitation: Invitation
        do throws(InvitationBuilder.Refusal) { invitation = try plan.invitation(key: key) } catch { throw CLIError(error.description) }
        let line = invitation.encoded()

        // The line first (a file that cannot be created stops everything), then the key, then
        // the peer: on a failure, what was written is taken back.
        if let output { try Self.writeNew(line + "\n", to: output) }
        let original = store
        var storeWritten = false
        do {
            do { try store.add(name: name, key: key) } catch { throw CLIError(error.description) }
            try saving(store)
            storeWritten = true
            try PeerArguments.add(plan.peer, toConfig: config.path)
        } catch {
            if storeWritten {
                if original.fileExists { try? original.save() } else { unlink(original.path) }
            }
            if let output { unlink(output) }
            throw error
        }
        if output == nil { print(line) }
        report(hub: hub, key: key, storePath: store.path)
    }

    private func report(hub: NodeConfig, key: PreSharedKey, storePath: String) {
        var text = "added peer '\(name)' to \(config.path) with a new key '\(name)' (key id \(key.id)) in \(storePath)\n"
        text += "the invitation\(output.map { " in \($0)" } ?? " above") is a secret (it holds the key): hand it to the branch over a safe channel;\n"
        text += "  there, as root: " + (output.map { "byst join --file \($0)\n" } ?? "byst join   (paste it; it is not shown)\n")
        text += "apply it here: byst reload -c \(config.path)\n"
        if hub.listen.isEmpty, hub.http.listen.isEmpty, hub.http.tlsListen.isEmpty {
            text += "byst: warning: \(config.path) has no listen, http_listen or https_listen: nothing here accepts the branch's links\n"
        }
        // Paths come from the operator: kept on their lines and terminal-safe.
        writeStandardError(text.split(separator: "\n").map { String($0).escapingControlCharacters() + "\n" }.joined())
    }

    /// Creates `path` with mode 0600; refuses an existing file.
    static func writeNew(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw CLIError("cannot create \(path): \(String(cString: strerror(errno)))".escapingControlCharacters()) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        defer { SecretBytes.wipe(&bytes) }
        if let error = writeAll(bytes, to: fd) {
            throw CLIError("cannot write \(path): \(String(cString: strerror(error)))".escapingControlCharacters())
        }
        guard fsync(fd) == 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))".escapingControlCharacters()) }
    }
}
