import Glibc

/// Minimal blocking TCP sockets on loopback for test clients and servers (run on threads).
struct BlockingSocket: Sendable {
    let fd: Int32

    struct Failure: Error, CustomStringConvertible {
        let what: String
        let code: Int32
        var description: String { "\(what): \(String(cString: strerror(code)))" }
    }

    /// Connects to 127.0.0.1:`port`, from `source` (another loopback address, e.g. 127.0.0.2,
    /// to stand for another host) when given.
    static func connect(port: UInt16, from source: UInt32? = nil) throws -> BlockingSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(what: "socket", code: errno) }
        if let source {
            var local = loopback(port: 0)
            local.sin_addr.s_addr = source.bigEndian
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                let code = errno
                Glibc.close(fd)
                throw Failure(what: "bind", code: code)
            }
        }
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw Failure(what: "connect 127.0.0.1:\(port)", code: code)
        }
        return BlockingSocket(fd: fd)
    }

    /// A listening socket on 127.0.0.1 (port 0 = any free port).
    static func listen(port: UInt16 = 0) throws -> BlockingSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(what: "socket", code: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw Failure(what: "bind/listen", code: code)
        }
        return BlockingSocket(fd: fd)
    }

    /// A port that was free a moment ago (for configs that need one up front). It is picked
    /// below the kernel's ephemeral range: a port from inside it, which binding port 0 gives,
    /// can be handed to some connect() as its source port before the config's listener binds it.
    static func freePort() throws -> UInt16 {
        let ephemeralStart = ephemeralRangeStart()
        for _ in 0..<200 {
            let candidate = UInt16.random(in: 10_000..<ephemeralStart)
            if let socket = try? listen(port: candidate) {
                socket.close()
                return candidate
            }
        }
        throw Failure(what: "no free port between 10000 and \(ephemeralStart)", code: EADDRINUSE)
    }

    /// The first port of net.ipv4.ip_local_port_range (Linux's default when unreadable).
    private static func ephemeralRangeStart() -> UInt16 {
        let defaultStart: UInt16 = 32768
        let fd = Glibc.open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY)
        guard fd >= 0 else { return defaultStart }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = Glibc.read(fd, &bytes, bytes.count)
        guard count > 0,
              let first = String(decoding: bytes.prefix(count), as: UTF8.self).split(whereSeparator: \.isWhitespace).first,
              let start = UInt16(first), start > 10_100 else { return defaultStart }
        return start
    }

    var localPort: UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    func accept() -> BlockingSocket? {
        let client = Glibc.accept(fd, nil, nil)
        return client >= 0 ? BlockingSocket(fd: client) : nil
    }

    func sendAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(what: "send", code: errno)
            }
            offset += n
        }
    }

    /// Reads into `buffer`; 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Failure(what: "recv", code: errno) }
            return n
        }
    }

    func readToEnd(limit: Int = 1 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// Reads then fail with EAGAIN after `seconds` without data (bounds hostile-input tests).
    func setReceiveTimeout(seconds: Int) {
        var value = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends then fail with EAGAIN after `seconds` without progress.
    func setSendTimeout(seconds: Int) {
        var value = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Everything the other end sends until it closes (end of stream or reset) or `deadline`
    /// passes, and whether it closed: for hostile-input tests that expect an answer and a close.
    func drain(until deadline: ContinuousClock.Instant) -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = ContinuousClock.now.duration(to: deadline).components
            let milliseconds = max(0, left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000)
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(clamping: milliseconds))
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { return (out, false) }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                out += chunk[0..<n]
            } else if n == 0 || errno != EINTR {
                return (out, true)
            }
        }
    }

    func sendText(_ text: String) throws {
        try Array(text.utf8).withUnsafeBytes { try sendAll($0) }
    }

    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }
    func close() { _ = Glibc.close(fd) }
    func shutdownBoth() { _ = shutdown(fd, Int32(SHUT_RDWR)) }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}
