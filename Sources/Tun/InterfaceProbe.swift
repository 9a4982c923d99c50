// What already holds an interface name, read from sysfs and /proc without touching the
// interface: `byst check` and `byst up` refuse a `[tun] name` that `TunDevice.open` could
// not take, before anything is created.
import Glibc

public enum InterfaceProbe {
    /// What stands behind an interface name.
    public enum State: Equatable, Sendable {
        /// No interface has the name: `TunDevice.open` creates it.
        case free
        /// A persistent TUN (`ip tuntap add … mode tun`) nobody has open: we would attach to it.
        case idlePersistentTun
        /// A TUN another process has open (another byst node, most likely).
        case tunInUse
        /// A TAP, an Ethernet card, a bridge…: not something we can use.
        case otherKind
    }

    static let iffTun: UInt32 = 0x0001
    static let iffTap: UInt32 = 0x0002
    static let iffPersist: UInt32 = 0x0800

    public static func state(of name: String) -> State {
        guard if_nametoindex(name) != 0 else { return .free }
        guard let text = readSmallFile("/sys/class/net/\(name)/tun_flags"), let flags = parseFlags(text) else { return .otherKind }
        return classify(flags: flags, attached: processesHolding(name) > 0)
    }

    /// The decision, from `tun_flags` and whether some process has the device open.
    public static func classify(flags: UInt32, attached: Bool) -> State {
        guard flags & iffTun != 0, flags & iffTap == 0 else { return .otherKind }
        // A TUN that is not persistent exists only while a process holds it.
        guard flags & iffPersist != 0 else { return .tunInUse }
        return attached ? .tunInUse : .idlePersistentTun
    }

    /// `0x1001` as sysfs writes it.
    static func parseFlags(_ text: String) -> UInt32? {
        let trimmed = text.filter { !$0.isWhitespace }
        guard trimmed.hasPrefix("0x") else { return UInt32(trimmed) }
        return UInt32(trimmed.dropFirst(2), radix: 16)
    }

    /// Open descriptors of TUN `name` in all processes we may look at (`iff:` in fdinfo).
    static func processesHolding(_ name: String) -> Int {
        guard let proc = opendir("/proc") else { return 0 }
        defer { closedir(proc) }
        var count = 0
        while let entry = readdir(proc) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !pid.isEmpty, pid.allSatisfy(\.isNumber), let fds = opendir("/proc/\(pid)/fdinfo") else { continue }
            defer { closedir(fds) }
            while let fdEntry = readdir(fds) {
                let fd = withUnsafeBytes(of: fdEntry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard fd.first?.isNumber == true, let info = readSmallFile("/proc/\(pid)/fdinfo/\(fd)") else { continue }
                if info.split(separator: "\n").contains(where: { $0.hasPrefix("iff:") && $0.dropFirst(4).trimmingSpaces() == name }) {
                    count += 1
                }
            }
        }
        return count
    }

    public static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text.removeLast() }
        return text
    }
}
