import ArgumentParser
import BYSTProto
import Glibc

/// `byst join`, run on a branch: reads the line of the hub's `byst invite` and writes the
/// branch's key store entry and config file (docs/OPERATIONS.md, "Invitations").
struct JoinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Set this node up as a branch from a hub's invitation (the line of `byst invite`).",
        discussion: """
            Reads the bystinv1_… line from standard input (on a terminal: pasted, not shown; a paste \
            wrapped over several lines is joined), or from --file (mode 0600). Stores the key in the \
            key store and writes the config file (default /etc/byst/NAME.toml, NAME being the branch's \
            name in the invitation), then prints how to start the node. A malformed, truncated or \
            mistyped line writes nothing; an existing config file is kept unless --force.
            """)

    @Option(help: "Read the invitation from this file (it must not be readable by group or others).") var file: String?
    @Option(name: [.customShort("c"), .customLong("config")], help: "Config file to write (default: /etc/byst/NAME.toml).")
    var config: String?
    @OptionGroup var store: KeyStoreOptions
    @Option(name: .customLong("control-socket"),
            help: "The node's control socket (default /run/byst/NAME.sock): for a second node on one host.")
    var controlSocket: String?
    @Flag(help: "Replace an existing config file, and a key of the hub's name in the key store.") var force = false

    func run() throws {
        let invitation = try readInvitation()
        let configPath = Self.absolute(config ?? "/etc/byst/\(invitation.branchName).toml")
        let storePath = Self.absolute(store.path)
        let text = BranchConfigText.render(invitation, keyStore: storePath == NodeConfig.defaultKeyStore ? nil : storePath,
                                           controlSocket: controlSocket.map(Self.absolute))
        // Checked as `byst up` will read it, before anything is written.
        do throws(ConfigError) { _ = try NodeConfig.parse(text, file: configPath) } catch { throw CLIError(error.description) }
        if !force, (try? AtomicFile.mode(configPath)) != nil {
            throw CLIError("\(configPath) exists: refusing to overwrite it (--force replaces it)".escapingControlCharacters())
        }
        var keys: KeyStore
        do { keys = try KeyStore.load(path: storePath) } catch { throw CLIError(error.description) }
        let original = keys
        if keys.entry(named: invitation.hubName) != nil {
            guard force else {
                throw CLIError("a key named '\(invitation.hubName)' already exists in \(storePath) (--force replaces it)".escapingControlCharacters())
            }
            try? keys.remove(name: invitation.hubName)
        }
        do { try keys.add(name: invitation.hubName, key: invitation.key) } catch { throw CLIError(error.description) }

        try saving(keys)
        do throws(AtomicFile.Failure) {
            try AtomicFile.makeDirectories(AtomicFile.directory(of: configPath))
            try AtomicFile.write(Array(text.utf8), to: configPath, mode: 0o600)
        } catch {
            // A key without its config is of no use: the store goes back to what it was.
            if original.fileExists { try? original.save() } else { unlink(storePath) }
            throw CLIError("cannot write the config: \(error)".escapingControlCharacters())
        }
        report(invitation, configPath: configPath, storePath: storePath)
    }

    private func readInvitation() throws -> Invitation {
        let decodes = { (text: String) in (try? Invitation.decode(text)) != nil }
        let text: String
        if let file {
            let read: [UInt8]?
            do throws(AtomicFile.SecretFileFailure) { read = try AtomicFile.readSecret(file) } catch {
                throw CLIError("invitation file: \(error.description) (it holds a key)".escapingControlCharacters())
            }
            guard var bytes = read else { throw CLIError("\(file): no such file".escapingControlCharacters()) }
            defer { SecretBytes.wipe(&bytes) }
            var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)[...]
            text = KeyInput.join(next: { lines.popFirst().map(String.init) }, decodes: decodes)
        } else {
            text = KeyInput.readStandardInput(what: "the \(Invitation.prefix)… line of byst invite", decodes: decodes)
        }
        guard !text.isEmpty else {
            throw CLIError("no invitation given: pipe the \(Invitation.prefix)… line of byst invite on standard input, or give --file FILE")
        }
        do throws(Invitation.Problem) { return try Invitation.decode(text) } catch { throw CLIError(error.description) }
    }

    private func report(_ invitation: Invitation, configPath: String, storePath: String) {
        let name = invitation.branchName
        var text = "joined as '\(name)': key '\(invitation.hubName)' (key id \(invitation.key.id)) in \(storePath), config \(configPath)\n"
        text += "hub '\(invitation.hubName)' at \(invitation.endpoints.map(\.description).joined(separator: ", "))"
        text += invitation.addresses.isEmpty ? "\n" : "; tunnel address \(invitation.addresses.map(\.description).joined(separator: ", "))\n"
        text += "check it:  byst check -c \(configPath)\n"
        text += "start it:  byst up -c \(configPath)\n"
        if configPath == "/etc/byst/\(name).toml" { text += "  or, under systemd: systemctl enable --now byst@\(name)\n" }
        print(text.split(separator: "\n").map { String($0).escapingControlCharacters() }.joined(separator: "\n"))
    }

    /// Config paths are read by `byst up` from wherever it runs: written absolute.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }
}
