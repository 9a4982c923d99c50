import BYSTProto
import Glibc

/// The node's PSKs by name, kept in one text file (PROTOCOL.md §2.3 describes the format):
///
///     # comment
///     <name> <base64 of the 32-byte key>
///
/// **Invariants**
/// - The file is never used if group or others can read or write it (mode & 077 ≠ 0), if it
///   is a symbolic link, or if neither we nor root own it (checked on the open descriptor).
/// - Transient copies of the keys (the file's bytes, decoded keys) are wiped after use.
/// - Writes replace the file atomically with mode 0600 (`AtomicFile`).
/// - Names are unique and match `KeyStore.isValidName`; key ids are unique, so a responder
///   always finds at most one key for an id.
public struct KeyStore: Sendable {
    public let path: String
    public private(set) var entries: [Entry]
    /// Whether `load` found the file (a missing file loads as an empty store).
    public private(set) var fileExists = false
    /// Positions in `entries` by name and by key id: lookups stay O(1) in a hub's store of
    /// thousands of keys (loading, reload and handshakes look keys up).
    private var positionByName: [String: Int] = [:]
    private var positionByID: [KeyID: Int] = [:]

    init(path: String, entries: [Entry], fileExists: Bool = false) {
        self.path = path
        self.entries = entries
        self.fileExists = fileExists
        reindex()
    }

    private mutating func reindex() {
        positionByName = Dictionary(entries.enumerated().map { ($0.element.name, $0.offset) }) { first, _ in first }
        positionByID = Dictionary(entries.enumerated().map { ($0.element.key.id, $0.offset) }) { first, _ in first }
    }

    public struct Entry: Sendable {
        public let name: String
        public let key: PreSharedKey
    }

    public enum Failure: Error, CustomStringConvertible {
        case insecurePermissions(path: String, mode: mode_t)
        case unsafeFile(AtomicFile.SecretFileFailure)
        case malformed(path: String, line: Int, reason: String)
        case duplicateName(String)
        case duplicateKey(name: String, existing: String)
        case invalidName(String)
        case notFound(name: String, path: String)
        /// The store file does not exist, so no key `name` can be in it.
        case storeMissing(name: String, path: String)
        case io(AtomicFile.Failure)

        public var description: String {
            switch self {
            case .insecurePermissions(let path, let mode):
                "key store \(path) is readable by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)"
            case .unsafeFile(let failure): "key store: \(failure)"
            case .malformed(let path, let line, let reason): "\(path):\(line): \(reason)"
            case .duplicateName(let name): "a key named '\(name)' already exists (remove it first with: byst key rm \(name))"
            case .duplicateKey(let name, let existing): "key '\(name)' is the same key as '\(existing)'"
            case .invalidName(let name):
                "invalid key name '\(name)': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
            case .notFound(let name, let path): "no key named '\(name)' in \(path)"
            case .storeMissing(let name, let path): KeyStore.missingStoreAdvice(path: path, keys: [name])
            case .io(let failure): failure.description
            }
        }
    }

    /// What to say when the store file is missing but `keys` are needed.
    public static func missingStoreAdvice(path: String, keys: [String]) -> String {
        let store = path == NodeConfig.defaultKeyStore ? "" : " --store \(path)"
        let names = keys.map { "'\($0)'" }.joined(separator: ", ")
        let name = keys.first ?? "NAME"
        return "the key store \(path) does not exist (key\(keys.count == 1 ? "" : "s") \(names) needed): "
            + "create a key with `byst key gen \(name)\(store)` (then `byst key export \(name)` for the peer), "
            + "or store the peer's with `byst key import \(name)\(store)`"
    }

    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 63, isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }

    /// Loads the store; a missing file is an empty store (created on first `save`).
    public static func load(path: String) throws(Failure) -> KeyStore {
        var contents: [UInt8]
        do throws(AtomicFile.SecretFileFailure) {
            guard let bytes = try AtomicFile.readSecret(path) else { return KeyStore(path: path, entries: []) }
            contents = bytes
        } catch {
            if case .insecurePermissions(let path, let mode) = error { throw .insecurePermissions(path: path, mode: mode) }
            throw .unsafeFile(error)
        }
        defer { SecretBytes.wipe(&contents) }
        return try parse(contents, path: path)
    }

    /// The store's lines, parsed from the bytes (no `String` copy of the keys is made).
    private static func parse(_ contents: [UInt8], path: String) throws(Failure) -> KeyStore {
        var store = KeyStore(path: path, entries: [], fileExists: true)
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") }
        for (index, rawLine) in contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard let first = rawLine.firstIndex(where: { !isSpace($0) }), rawLine[first] != UInt8(ascii: "#") else { continue }
            let fields = rawLine[first...].split(whereSeparator: isSpace)
            guard fields.count == 2, let name = String(validating: fields[0], as: UTF8.self) else {
                throw .malformed(path: path, line: index + 1, reason: "expected '<name> <base64 key>'")
            }
            guard var raw = Base64URL.decode(bytes: fields[1]) else {
                throw .malformed(path: path, line: index + 1, reason: "key of '\(name)' is not 32 bytes of base64")
            }
            defer { SecretBytes.wipe(&raw) }
            guard raw.count == PreSharedKey.size else {
                throw .malformed(path: path, line: index + 1, reason: "key of '\(name)' is not 32 bytes of base64")
            }
            let key: PreSharedKey
            do { key = try PreSharedKey(secret: SecretBytes(raw)) } catch {
                throw .malformed(path: path, line: index + 1, reason: "key of '\(name)' is weak (\(error)); regenerate it")
            }
            do throws(Failure) { try store.add(name: name, key: key) } catch {
                throw .malformed(path: path, line: index + 1, reason: error.description)
            }
        }
        return store
    }

    public mutating func add(name: String, key: PreSharedKey) throws(Failure) {
        guard Self.isValidName(name) else { throw .invalidName(name) }
        guard entry(named: name) == nil else { throw .duplicateName(name) }
        if let same = positionByID[key.id] { throw .duplicateKey(name: name, existing: entries[same].name) }
        positionByName[name] = entries.count
        positionByID[key.id] = entries.count
        entries.append(Entry(name: name, key: key))
    }

    public mutating func remove(name: String) throws(Failure) {
        guard let index = positionByName[name] else { throw .notFound(name: name, path: path) }
        entries.remove(at: index)
        reindex()
    }

    public func entry(named name: String) -> Entry? { positionByName[name].map { entries[$0] } }

    /// During a rotation the new key of `name` is stored as `name.next` (docs/OPERATIONS.md,
    /// "Key rotation"): nodes accept both and dial with the new one.
    public static func nextName(for name: String) -> String { name + ".next" }

    /// The key `name` and, while it rotates, its successor.
    public func keys(named name: String) -> (current: PreSharedKey, next: PreSharedKey?)? {
        guard let current = entry(named: name)?.key else { return nil }
        return (current, entry(named: Self.nextName(for: name))?.key)
    }

    /// Ends a rotation: `name` takes the key of `name.next`, which is removed.
    public mutating func promoteNext(of name: String) throws(Failure) {
        let nextName = Self.nextName(for: name)
        guard let next = positionByName[nextName] else { throw .notFound(name: nextName, path: path) }
        guard let current = positionByName[name] else { throw .notFound(name: name, path: path) }
        entries[current] = Entry(name: name, key: entries[next].key)
        entries.remove(at: next)
        reindex()
    }

    public func key(for id: KeyID) -> PreSharedKey? { positionByID[id].map { entries[$0].key } }

    /// Writes the store atomically with mode 0600, creating its directory (0700) if needed.
    public func save() throws(Failure) {
        var bytes = Array("# BYST key store: keep it secret (mode 0600). Format: <name> <base64 key>\n".utf8)
        bytes.reserveCapacity(bytes.count + entries.count * 120)
        defer { SecretBytes.wipe(&bytes) }
        for entry in entries {
            bytes += entry.name.utf8
            bytes.append(UInt8(ascii: " "))
            entry.key.secret.withUnsafeBytes { Base64URL.encode($0, urlSafe: false, padded: true, into: &bytes) }
            bytes.append(UInt8(ascii: "\n"))
        }
        do throws(AtomicFile.Failure) {
            try AtomicFile.makeDirectories(AtomicFile.directory(of: path))
            try AtomicFile.write(bytes, to: path, mode: 0o600)
        } catch { throw .io(error) }
    }
}
