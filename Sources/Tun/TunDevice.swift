// A Linux TUN interface: one IP packet per read(2) and per write(2) (IFF_NO_PI), each after
// a 10-byte virtio-net header when opened with `vnetHeader` (IFF_VNET_HDR: offloads).
//
//   kernel routes a packet to byst0 ─▶ read(fd) ─▶ packet channel ─▶ peer
//   peer's packet ─▶ write(fd) ─▶ kernel delivers it as if it arrived on byst0
//
// Packets are never written through a NIO stream: NIO may merge two writes into one,
// and TUN takes one packet per write (docs/ARCHITECTURE.md §8).
import CTun
import Glibc

/// **Invariants**: `fd` is non-blocking and owned by this object until `close()`.
public final class TunDevice: @unchecked Sendable {
    public let name: String
    public let fd: Int32
    /// Packets carry a `VirtioNetHeader` first.
    public let vnetHeader: Bool
    private var closed = false

    public static let maxNameBytes = 15

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case invalidName(String)
        case noTunDriver
        case permissionDenied
        case nameInUse(String)
        case system(operation: String, errno: Int32)

        public var description: String {
            switch self {
            case .invalidName(let name): "invalid TUN name '\(name)': 1-15 characters"
            case .noTunDriver: "/dev/net/tun is missing: load the tun module (modprobe tun)"
            case .permissionDenied: "no permission to create a TUN interface: run as root or grant CAP_NET_ADMIN"
            case .nameInUse(let name):
                "interface '\(name)' already exists and is held by another process (another byst node?) or is not a TUN: give this node a different [tun] name"
            case .system(let operation, let code): "\(operation): \(String(cString: strerror(code)))"
            }
        }
    }

    private init(name: String, fd: Int32, vnetHeader: Bool) {
        self.name = name
        self.fd = fd
        self.vnetHeader = vnetHeader
    }

    /// Creates (or attaches to) TUN interface `name`.
    public static func open(name: String, multiQueue: Bool = false, vnetHeader: Bool = false) throws(Failure) -> TunDevice {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maxNameBytes, !bytes.contains(0), !bytes.contains(UInt8(ascii: "/")) else {
            throw .invalidName(name)
        }
        var actual = [CChar](repeating: 0, count: 16)
        var failedStep: Int32 = 0
        let flags = (multiQueue ? BYST_TUN_MULTI_QUEUE : 0) | (vnetHeader ? BYST_TUN_VNET_HDR : 0)
        let result = byst_tun_open(name, flags, &actual, &failedStep)
        if result < 0 {
            let code = -result
            switch (failedStep, code) {
            case (1, ENOENT), (1, ENODEV), (1, ENXIO): throw .noTunDriver
            case (_, EPERM), (_, EACCES): throw .permissionDenied
            case (2, EBUSY), (2, EINVAL): throw .nameInUse(name)
            default: throw .system(operation: failedStep == 1 ? "open /dev/net/tun" : "TUNSETIFF \(name)", errno: code)
            }
        }
        let actualName = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return TunDevice(name: actualName, fd: result, vnetHeader: vnetHeader)
    }

    /// Which offloaded packets the kernel hands us and takes from us.
    public struct Offloads: OptionSet, Sendable, CustomStringConvertible {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Partial checksums, TCP segmentation (IPv4, IPv6, with ECN).
        public static let tcp = Offloads(rawValue: UInt32(BYST_TUN_F_CSUM | BYST_TUN_F_TSO4 | BYST_TUN_F_TSO6 | BYST_TUN_F_TSO_ECN))
        /// UDP segmentation (Linux 6.2 and later).
        public static let udp = Offloads(rawValue: UInt32(BYST_TUN_F_USO4 | BYST_TUN_F_USO6))
        public var description: String {
            [contains(.tcp) ? "csum+tso4+tso6" : nil, contains(.udp) ? "uso4+uso6" : nil].compactMap { $0 }.joined(separator: "+")
        }
    }

    /// Enables TCP offloads and, where the kernel has it, UDP segmentation; returns what is on.
    /// Only for a device opened with `vnetHeader`.
    public func enableOffloads() throws(Failure) -> Offloads {
        let all: Offloads = [.tcp, .udp]
        if byst_tun_set_offload(fd, all.rawValue) == 0 { return all }
        let result = byst_tun_set_offload(fd, Offloads.tcp.rawValue)
        guard result == 0 else { throw .system(operation: "TUNSETOFFLOAD \(name)", errno: -result) }
        return .tcp
    }

    /// Writes a virtio-net header and a packet as one packet (writev: no copy).
    @discardableResult
    public func write(header: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer) -> Bool {
        // Two iovecs in a tuple on the stack (an array literal would be a heap allocation).
        var parts = (
            iovec(iov_base: UnsafeMutableRawPointer(mutating: header.baseAddress), iov_len: header.count),
            iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count)
        )
        return withUnsafeMutableBytes(of: &parts) { raw in
            let vectors = raw.baseAddress?.assumingMemoryBound(to: iovec.self)
            while true {
                let n = writev(fd, vectors, 2)
                if n == header.count + packet.count { return true }
                if n < 0 && errno == EINTR { continue }
                return false
            }
        }
    }

    /// Reads one packet; nil when none is waiting (EAGAIN).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int? {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case let code: throw .system(operation: "read \(name)", errno: code)
            }
        }
    }

    /// Writes one packet; false if the kernel refused or had no room (the packet is dropped,
    /// as a full interface queue would).
    @discardableResult
    public func write(_ packet: UnsafeRawBufferPointer) -> Bool {
        while true {
            let n = Glibc.write(fd, packet.baseAddress, packet.count)
            if n == packet.count { return true }
            if n < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// Waits up to `timeoutMilliseconds` for a packet to read.
    public func waitReadable(timeoutMilliseconds: Int32) -> Bool {
        Self.wait(fd: fd, for: Int16(POLLIN), timeoutMilliseconds: timeoutMilliseconds)
    }

    /// `poll(2)` on one descriptor for up to `timeoutMilliseconds` in all: a signal
    /// (a child's SIGCHLD, a reload's SIGHUP) interrupts the call, not the wait.
    public static func wait(fd: Int32, for events: Int16, timeoutMilliseconds: Int32) -> Bool {
        func milliseconds() -> Int64 {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
        }
        let deadline = milliseconds() + Int64(max(timeoutMilliseconds, 0))
        var descriptor = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let left = Int32(clamping: max(deadline - milliseconds(), 0))
            let ready = poll(&descriptor, 1, left)
            if ready >= 0 || errno != EINTR { return ready > 0 }
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    deinit { close() }
}
