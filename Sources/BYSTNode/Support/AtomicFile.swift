import BYSTProto
import Glibc

/// Whole-file reads and crash-safe replacement of small files (key store, config).
///
/// A write goes to a new temporary file in the same directory (created with `mode`),
/// is fsync'd, renamed over the target, and the directory is fsync'd: after a crash the
/// file holds either the old or the new contents, never a mix.
public enum AtomicFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let operation: String
        public let errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// The file's bytes, or nil if it does not exist.
    public static func read(_ path: String, limit: Int = 16 << 20) throws(Failure) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw Failure(path: path, operation: "open", errno: errno)
        }
        defer { close(fd) }
        return try readAll(fd, path: path, limit: limit)
    }

    private static func readAll(_ fd: Int32, path: String, limit: Int) throws(Failure) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        // The chunk may hold secrets (the key store): wiped, like the caller's copy, which
        // starts large enough for a key store not to leave unwiped copies as it grows.
        defer { SecretBytes.wipe(&chunk) }
        bytes.reserveCapacity(64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= limit else { throw Failure(path: path, operation: "read (file too large)", errno: EFBIG) }
        }
        return bytes
    }

    /// A file that holds secrets, or nil if it does not exist: opened without following a
    /// symbolic link, then checked *on the open descriptor* (no check-then-open race): a
    /// regular file, owned by us or root, with none of the mode bits in `forbiddenMode`.
    /// The caller wipes the bytes when done (`SecretBytes.wipe`).
    public static func readSecret(_ path: String, forbiddenMode: mode_t = 0o077, limit: Int = 16 << 20) throws(SecretFileFailure) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw .symbolicLink(path: path) }
            throw .io(Failure(path: path, operation: "open", errno: errno))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(Failure(path: path, operation: "fstat", errno: errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegular(path: path) }
        guard info.st_uid == geteuid() || info.st_uid == 0 else { throw .foreignOwner(path: path, uid: info.st_uid) }
        let mode = info.st_mode & 0o7777
        guard mode & forbiddenMode == 0 else { throw .insecurePermissions(path: path, mode: mode) }
        do throws(Failure) { return try readAll(fd, path: path, limit: limit) } catch { throw .io(error) }
    }

    /// Why a secret file was not read.
    public enum SecretFileFailure: Error, CustomStringConvertible, Sendable {
        case symbolicLink(path: String)
        case notRegular(path: String)
        case foreignOwner(path: String, uid: uid_t)
        case insecurePermissions(path: String, mode: mode_t)
        case io(Failure)

        public var description: String {
            switch self {
            case .symbolicLink(let path): "\(path) is a symbolic link; secrets are read only from the file itself"
            case .notRegular(let path): "\(path) is not a regular file"
            case .foreignOwner(let path, let uid): "\(path) is owned by uid \(uid), not by us (uid \(geteuid())) or root; run: chown \(geteuid()) \(path)"
            case .insecurePermissions(let path, let mode):
                "\(path) is readable or writable by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)"
            case .io(let failure): failure.description
            }
        }
    }

    /// The permission bits of `path`, or nil if it does not exist.
    public static func mode(_ path: String) throws(Failure) -> mode_t? {
        var info = stat()
        if stat(path, &info) != 0 {
            if errno == ENOENT { return nil }
            throw Failure(path: path, operation: "stat", errno: errno)
        }
        return info.st_mode & 0o7777
    }

    /// Replaces `path` with `bytes` atomically; the new file gets `mode`.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(Failure) {
        let directory = Self.directory(of: path)
        let suffix = UInt64.random(in: 0...UInt64.max)
        let temporary = "\(directory)/.\(basename(of: path)).\(getpid()).\(String(suffix, radix: 36)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(path: temporary, operation: "create", errno: errno) }
        var failure = writeAll(bytes, to: fd).map { Failure(path: temporary, operation: "write", errno: $0) }
        if failure == nil, fchmod(fd, mode) != 0 { failure = Failure(path: temporary, operation: "chmod", errno: errno) }
        if failure == nil, fsync(fd) != 0 { failure = Failure(path: temporary, operation: "fsync", errno: errno) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = Failure(path: path, operation: "rename", errno: errno) }
        if let failure {
            unlink(temporary)
            throw failure
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    /// Creates `path` and missing parents with `mode` (existing directories are left as they are).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws(Failure) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw Failure(path: current, operation: "mkdir", errno: errno)
            }
        }
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
