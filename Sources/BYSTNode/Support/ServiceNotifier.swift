// systemd's service readiness protocol (sd_notify(3)), without libsystemd: a unit with
// `Type=notify` (deploy/byst.service) learns when the node is up, reloading, or stopping.
//
//   started ─▶ READY=1        SIGHUP ─▶ RELOADING=1 ─▶ reload ─▶ READY=1       SIGTERM ─▶ STOPPING=1
//
// Each state is one datagram to the Unix socket that $NOTIFY_SOCKET names: a path, or after
// '@' a name in the abstract namespace. Without the variable (not started by systemd, or
// another `Type=`) nothing is sent.
import Glibc

struct ServiceNotifier: Sendable {
    /// The socket address's path bytes (a leading NUL for the abstract namespace); nil: off.
    private let address: [UInt8]?

    init(notifySocket: String?) {
        guard let path = notifySocket, !path.isEmpty, path.hasPrefix("/") || path.hasPrefix("@") else {
            address = nil
            return
        }
        var bytes = Array(path.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        address = bytes.count < capacity ? bytes : nil
    }

    /// From the environment, as systemd sets it.
    static func fromEnvironment() -> ServiceNotifier {
        ServiceNotifier(notifySocket: getenv("NOTIFY_SOCKET").map { String(cString: $0) })
    }

    var isEnabled: Bool { address != nil }

    /// Each returns nil when sent (or when off), else why not.
    /// `status` is one line for `systemctl status`: each line break becomes "; " (the message
    /// is newline-separated assignments, so a multi-line error would otherwise add lines of its own).
    func ready(status: String) -> String? {
        let oneLine = status.split(whereSeparator: \.isNewline).joined(separator: "; ")
        return send("READY=1\nSTATUS=\(oneLine)")
    }

    /// `MONOTONIC_USEC` lets systemd tell this reload from an earlier one.
    func reloading() -> String? {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return send("RELOADING=1\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)")
    }

    func stopping() -> String? { send("STOPPING=1") }

    /// One datagram; nil when sent or off, else the error (logged by the caller: systemd,
    /// without READY=1, times the start out).
    func send(_ message: String) -> String? {
        guard let address else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &target.sun_path) { path in
            for (index, byte) in address.enumerated() { path[index] = byte }
        }
        // An abstract name is as long as its bytes; a path ends at its NUL.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count + (address.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        return sent == bytes.count ? nil : String(cString: strerror(errno))
    }
}
