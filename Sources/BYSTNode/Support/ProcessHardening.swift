import CTun
import Glibc

/// Every `byst` (and `byst-bench`) process may hold PSKs in memory (the daemon always does;
/// `key` commands while they run): no core file may carry them to disk, and no other
/// process of the same user may read our memory. Called by `CommandLineRunner`.
enum ProcessHardening {
    static func protectSecrets() {
        // No core dump, whatever the shell's `ulimit -c` or systemd's LimitCORE says.
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        // Not dumpable: no core through a core_pattern pipe either, and ptrace and
        // /proc/PID/mem are refused to other processes of our user (root still may).
        _ = byst_set_dumpable(0)
    }

    /// Whether the kernel would write a core for us (tests).
    static var isDumpable: Bool { byst_get_dumpable() == 1 }
}
