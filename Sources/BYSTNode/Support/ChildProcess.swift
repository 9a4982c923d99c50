import CTun
import Glibc

/// A command the node runs without a shell (`[ha] on_active`/`on_standby`): spawned in its
/// own process group, stdin from /dev/null, stdout and stderr shared with the node (the
/// journal), no other descriptor, default signal handling. Its end is polled (`poll`), so nothing blocks.
struct ChildProcess {
    let pid: pid_t

    enum Ending: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    struct SpawnFailure: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { String(cString: strerror(errno)) }
    }

    /// Starts `argv[0]` (a path) with `argv` and this process's environment plus `extraEnvironment`.
    static func spawn(_ argv: [String], extraEnvironment: [String: String]) throws(SpawnFailure) -> ChildProcess {
        guard let program = argv.first else { throw SpawnFailure(errno: EINVAL) }
        var environment: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let name = text.split(separator: "=", maxSplits: 1).first, extraEnvironment[String(name)] == nil { environment.append(text) }
            entry += 1
        }
        environment += extraEnvironment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // Nothing else of ours: a descriptor another thread opened without O_CLOEXEC (a
        // file being written, a socket) must not live on in a command for seconds.
        let closing = byst_spawn_actions_close_from(&actions, 3)
        guard closing == 0 else { throw SpawnFailure(errno: closing) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group (a timeout kills the whole group); no inherited signal mask;
        // SIGPIPE back to its default (the node ignores it).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArguments = argv.map { strdup($0) }
        let cEnvironment = environment.map { strdup($0) }
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, cArguments + [nil], cEnvironment + [nil])
        guard result == 0 else { throw SpawnFailure(errno: result) }
        return ChildProcess(pid: pid)
    }

    /// Its ending, if it has ended (reaped then); nil while it runs.
    func poll() -> Ending? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result < 0 ? .exited(-1) : nil }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// SIGKILL to its process group.
    func kill() {
        _ = Glibc.kill(-pid, SIGKILL)
    }
}
