import Foundation
import Glibc
import Testing
@testable import BYSTNode

/// sd_notify datagrams reach a Unix socket named by a path or an abstract name, as systemd's.
@Suite struct ServiceNotifierTests {
    /// A datagram socket bound to `address` (path bytes; a leading NUL for an abstract name).
    private static func receiver(_ address: [UInt8]) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var bound = sockaddr_un()
        bound.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &bound.sun_path) { path in for (index, byte) in address.enumerated() { path[index] = byte } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count + (address.first == 0 ? 0 : 1))
        let result = withUnsafePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(result == 0, "bind: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private static func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    @Test func statesReachASocketByPath() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("byst-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("notify").path
        let fd = try Self.receiver(Array(path.utf8))
        defer { close(fd) }

        let notifier = ServiceNotifier(notifySocket: path)
        #expect(notifier.isEnabled)
        #expect(notifier.ready(status: "node hub up") == nil)
        #expect(Self.receive(fd) == "READY=1\nSTATUS=node hub up")
        #expect(notifier.reloading() == nil)
        let reloading = Self.receive(fd) ?? ""
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(UInt64(reloading.split(separator: "=").last ?? "") ?? 0 > 0)
        #expect(notifier.stopping() == nil)
        #expect(Self.receive(fd) == "STOPPING=1")
        // A multi-line reason (a config error) stays inside STATUS: no line of its own.
        #expect(notifier.ready(status: "reload refused: line 3\nREADY=0\r\n  key") == nil)
        #expect(Self.receive(fd) == "READY=1\nSTATUS=reload refused: line 3; READY=0;   key")
    }

    @Test func statesReachAnAbstractSocket() throws {
        let name = "byst-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try Self.receiver([0] + Array(name.utf8))
        defer { close(fd) }
        let notifier = ServiceNotifier(notifySocket: "@" + name)
        #expect(notifier.send("READY=1") == nil)
        #expect(Self.receive(fd) == "READY=1")
    }

    @Test func withoutAUsableSocketNothingIsSent() {
        for value in [nil, "", "relative/path", "/" + String(repeating: "x", count: 200)] {
            let notifier = ServiceNotifier(notifySocket: value)
            #expect(!notifier.isEnabled, "\(value ?? "nil")")
            #expect(notifier.send("READY=1") == nil, "off: nothing sent, nothing to report")
        }
        // A socket nobody listens on: the send fails with the reason, and nothing else happens.
        let failure = ServiceNotifier(notifySocket: "/nonexistent/byst-notify").send("READY=1")
        #expect(failure == String(cString: strerror(ENOENT)))
    }
}
