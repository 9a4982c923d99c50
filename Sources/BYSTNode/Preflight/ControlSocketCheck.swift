import Glibc

/// Whether the control socket can be created where `control_socket` puts it: its directory
/// exists and is writable, or can be made (tried, then removed again).
enum ControlSocketCheck {
    /// Why the control socket at `path` could not be created: `detail` is the failed step.
    struct Failure: Error, CustomStringConvertible {
        let path: String
        let detail: String
        let isDefault: Bool

        var description: String {
            var text = "control socket \(path): \(detail): set control_socket in [node] to a path in a directory you can write"
            if isDefault { text += " (the default, /run/byst, needs root, or the systemd unit byst@.service, which creates it)" }
            return text
        }
    }

    static func failure(config: NodeConfig) -> Failure? {
        let path = config.controlSocket
        let isDefault = path == NodeConfig.defaultControlSocket(name: config.name)
        guard let detail = problem(directory: AtomicFile.directory(of: path)) else { return nil }
        return Failure(path: path, detail: detail, isDefault: isDefault)
    }

    /// The failed step, else nil. Creates missing directories only to remove them again.
    static func problem(directory: String) -> String? {
        var missing: [String] = []
        var current = directory
        var info = stat()
        while stat(current, &info) != 0 {
            guard errno == ENOENT else { return "stat \(current): \(String(cString: strerror(errno)))" }
            missing.append(current)
            let parent = AtomicFile.directory(of: current)
            guard parent != current else { return "\(current) does not exist" }
            current = parent
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return "\(current) is not a directory" }
        guard !missing.isEmpty else {
            return access(directory, W_OK | X_OK) == 0 ? nil : "cannot write in \(directory): \(String(cString: strerror(errno)))"
        }
        var made: [String] = []
        defer { for path in made.reversed() { rmdir(path) } }
        for path in missing.reversed() {
            guard mkdir(path, 0o755) == 0 else { return "mkdir \(path): \(String(cString: strerror(errno)))" }
            made.append(path)
        }
        return nil
    }
}
