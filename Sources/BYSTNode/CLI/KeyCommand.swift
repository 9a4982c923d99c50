import ArgumentParser
import BYSTProto
import Glibc

/// Options shared by the `byst key` subcommands.
struct KeyStoreOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: "Key store file (default: $BYST_KEY_STORE or /etc/byst/keys).")
    var storePath: String?

    var path: String {
        if let storePath { return storePath }
        if let fromEnvironment = getenv("BYST_KEY_STORE").map({ String(cString: $0) }), !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return "/etc/byst/keys"
    }

    func load() throws -> KeyStore {
        do { return try KeyStore.load(path: path) } catch { throw CLIError(error.description) }
    }
}

func saving(_ store: KeyStore) throws {
    do { try store.save() } catch { throw CLIError(error.description) }
}

func require(_ store: KeyStore, _ name: String) throws -> KeyStore.Entry {
    guard let entry = store.entry(named: name) else {
        guard store.fileExists else { throw CLIError(KeyStore.Failure.storeMissing(name: name, path: store.path).description) }
        throw CLIError(KeyStore.Failure.notFound(name: name, path: store.path).description)
    }
    return entry
}

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create, list, show, export, import and remove pre-shared keys.",
        subcommands: [Gen.self, List.self, Show.self, Export.self, Import.self, Remove.self, Rotate.self]
    )

    struct Gen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate a new 256-bit key from the OS CSPRNG.")
        @Argument(help: "Name of the key (usually the peer's name).") var name: String
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            var keys = try store.load()
            let key: PreSharedKey
            do { key = try .generate() } catch { throw CLIError("cannot generate a key: \(error)") }
            do { try keys.add(name: name, key: key) } catch { throw CLIError(error.description) }
            try saving(keys)
            print("generated key '\(name)' (key id \(key.id)) in \(keys.path)")
            print("give it to the peer with: byst key export \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys by name and key id (never the secrets).")
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            let keys = try store.load()
            let width = max(4, keys.entries.map(\.name.count).max() ?? 0)
            print("NAME".padding(width) + "  KEY ID")
            for entry in keys.entries { print(entry.name.padding(width) + "  \(entry.key.id)") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a key's id; the secret only with --secret.")
        @Argument var name: String
        @Flag(help: "Also print the secret (as its export string).") var secret = false
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            let entry = try require(store.load(), name)
            print("name:   \(entry.name)")
            print("key id: \(entry.key.id)")
            print("secret: \(secret ? KeyExport.encode(entry.key) : "(hidden)")")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the key as a copy-pasteable string (bystk1_…) for the peer's `byst key import`.")
        @Argument var name: String
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            print(KeyExport.encode(try require(store.load(), name).key))
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a key exported by a peer; reads the string from standard input if not given.")
        @Argument var name: String
        @Argument(help: "The bystk1_… string (prefer standard input: it keeps the key out of shell history).")
        var exported: String?
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            if exported != nil {
                // Other local users see a process's arguments (/proc/PID/cmdline, ps) while it runs.
                writeStandardError("warning: a key on the command line is visible to other local users (ps) and stays in shell history; prefer: byst key import \(name) < file, or paste it on standard input\n")
            }
            let text = exported ?? KeyInput.readStandardInput()
            guard !text.isEmpty else {
                throw CLIError("no key given: pass the bystk1_… string or pipe it on standard input")
            }
            let key: PreSharedKey
            do { key = try KeyExport.decode(text) } catch { throw CLIError(error.description) }
            var keys = try store.load()
            do { try keys.add(name: name, key: key) } catch { throw CLIError(error.description) }
            try saving(keys)
            print("imported key '\(name)' (key id \(key.id)) into \(keys.path)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a key.")
        @Argument var name: String
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            var keys = try store.load()
            do { try keys.remove(name: name) } catch { throw CLIError(error.description) }
            try saving(keys)
            print("removed key '\(name)' from \(keys.path)")
        }
    }
}

extension KeyCommand {
    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a key without downtime: a new key beside the old one, then --finish.",
            discussion: """
                Step 1 (here): byst key rotate NAME — stores a new key as NAME.next and prints it.
                Both nodes accept the old and the new key while the rotation runs; links move to the
                new key as soon as both ends have it (after byst reload), without dropping streams.
                Step 2 (when both ends run on the new key): byst key rotate NAME --finish on each end,
                then byst reload — the old key is gone.
                """)
        @Argument(help: "Name of the key to rotate.") var name: String
        @Flag(help: "End the rotation: NAME takes the new key and NAME.next is removed.") var finish = false
        @OptionGroup var store: KeyStoreOptions

        func run() throws {
            var keys = try store.load()
            let nextName = KeyStore.nextName(for: name)
            guard keys.entry(named: name) != nil else { throw CLIError("no key named '\(name)' in \(keys.path)") }
            if finish {
                do { try keys.promoteNext(of: name) } catch {
                    throw CLIError("no rotation of '\(name)' in progress (\(nextName) is not in \(keys.path))")
                }
                try saving(keys)
                print("key '\(name)' is now the new key (key id \(keys.entry(named: name)?.key.id.description ?? "?")); \(nextName) removed")
                print("apply it with: byst reload   (links still on the old key are replaced)")
                return
            }
            guard keys.entry(named: nextName) == nil else {
                throw CLIError("a rotation of '\(name)' is in progress (\(nextName) exists): finish it with byst key rotate \(name) --finish")
            }
            guard KeyStore.isValidName(nextName) else { throw CLIError("key name '\(name)' is too long to rotate (max 58 characters)") }
            let key: PreSharedKey
            do { key = try .generate() } catch { throw CLIError("cannot generate a key: \(error)") }
            do { try keys.add(name: nextName, key: key) } catch { throw CLIError(error.description) }
            try saving(keys)
            print("""
                new key for '\(name)' stored as '\(nextName)' (key id \(key.id)) in \(keys.path)
                export string for the peer:
                \(KeyExport.encode(key))

                next steps:
                  1. here:         byst reload            (accept both keys)
                  2. on the peer:  byst key import <its name for this key>.next   (paste the string), then byst reload
                                   (its links re-handshake onto the new key; streams and packets keep flowing)
                  3. on both, once byst status shows the new key id on the links:
                                   byst key rotate <name> --finish && byst reload
                """)
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
