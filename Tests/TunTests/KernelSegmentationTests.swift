import BYSTProto
import Foundation
import Glibc
import Testing
import CTun
@testable import Tun

/// Our user-space segmentation against the kernel's own, on packets captured from a real TUN
/// in a private network namespace (created on a thread of this process, gone with it; no
/// packet leaves it): a UDP send with `UDP_SEGMENT` reaches a TUN with offloads as one GSO
/// super-packet; the same send with the TUN's offloads switched off reaches it as the
/// kernel's segments. `GSOSegmenter` must produce those segments byte for byte (the IPv4 id,
/// and with it the header checksum, differ between two sends and are checked separately).
@Suite struct KernelSegmentationTests {
    struct Capture: Sendable {
        var header: VirtioNetHeader
        var superPacket: [UInt8]
        var kernelSegments: [[UInt8]]
    }

    @Test func udpSegmentationMatchesTheKernel() throws {
        let capture = try Self.inPrivateNetworkNamespace { () throws -> Capture in
            let device = try TunDevice.open(name: "gso0", vnetHeader: true)
            defer { device.close() }
            let offloads = try device.enableOffloads()
            guard offloads.contains(.udp) else { throw CaptureError("this kernel has no UDP segmentation offload (needs Linux 6.2)") }
            try InterfaceConfigurator.configure(interface: "gso0", addresses: [IPPrefix("10.231.1.1/24")!], mtu: 1500, routes: [])
            let payload = (0..<3500).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
            try Self.sendSegmented(payload, to: "10.231.1.2", port: 9999, segmentSize: 1000)
            let (header, superPacket) = try Self.read(device)
            // Offloads off: the kernel segments (and checksums) before handing packets over.
            guard byst_tun_set_offload(device.fd, 0) == 0 else { throw CaptureError("TUNSETOFFLOAD 0 failed") }
            try Self.sendSegmented(payload, to: "10.231.1.2", port: 9999, segmentSize: 1000)
            var segments: [[UInt8]] = []
            while segments.count < 4 {
                var (segmentHeader, segment) = try Self.read(device)
                #expect(!segmentHeader.isGSO)
                if segmentHeader.needsChecksum { try GSOSegmenter.completeChecksum(&segment, header: segmentHeader) }
                segmentHeader = .plain
                segments.append(segment)
            }
            return Capture(header: header, superPacket: superPacket, kernelSegments: segments)
        }
        #expect(capture.header.gsoType & ~VirtioNetHeader.gsoECN == VirtioNetHeader.gsoUDPL4)
        #expect(capture.header.gsoSize == 1000)
        #expect(capture.superPacket.count == 20 + 8 + 3500)

        let ours = try GSOSegmenter.segments(of: capture.superPacket, header: capture.header)
        #expect(ours.count == capture.kernelSegments.count)
        let firstID = Int(capture.superPacket[4]) << 8 | Int(capture.superPacket[5])
        for (index, (mine, kernel)) in zip(ours, capture.kernelSegments).enumerated() {
            #expect(mine.count == kernel.count, "segment \(index)")
            guard mine.count == kernel.count else { continue }
            // Everything but the IPv4 id and header checksum is identical …
            let differing = mine.indices.filter { mine[$0] != kernel[$0] && ![4, 5, 10, 11].contains($0) }
            #expect(differing.isEmpty, "segment \(index) differs at \(differing.prefix(8))")
            // … and ours numbers the ids on from the super-packet's, as the kernel does.
            #expect(Int(mine[4]) << 8 | Int(mine[5]) == (firstID + index) & 0xFFFF)
        }
    }

    struct CaptureError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs `body` on a new thread that first moves into a network namespace of its own.
    static func inPrivateNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = LockedResult<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            // unshare(2) needs _GNU_SOURCE, which Glibc's Swift module does not define.
            typealias Unshare = @convention(c) (Int32) -> Int32
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else {
                return result.set(.failure(CaptureError("no unshare in libc")))
            }
            let unshare = unsafeBitCast(symbol, to: Unshare.self)
            let cloneNewNet: Int32 = 0x4000_0000
            guard unshare(cloneNewNet) == 0 else {
                return result.set(.failure(CaptureError("unshare(CLONE_NEWNET): \(String(cString: strerror(errno))) (run as root)")))
            }
            result.set(Result { try body() })
        }
        thread.start()
        guard done.wait(timeout: .now() + 20) == .success else { throw CaptureError("capture timed out") }
        return try result.get()
    }

    static func sendSegmented(_ payload: [UInt8], to host: String, port: UInt16, segmentSize: Int32) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw CaptureError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var size = segmentSize
        guard setsockopt(fd, Int32(IPPROTO_UDP), 103 /* UDP_SEGMENT */, &size, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw CaptureError("UDP_SEGMENT: \(String(cString: strerror(errno)))")
        }
        // The same source port for both sends: the segments must be comparable byte for byte.
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = UInt16(40000).bigEndian
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw CaptureError("bind: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let sent = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == payload.count else { throw CaptureError("sendto: \(String(cString: strerror(errno)))") }
    }

    /// The next packet from the TUN that is ours (UDP to port 9999), skipping others (e.g. IPv6
    /// router solicitations), with its virtio-net header.
    static func read(_ device: TunDevice) throws -> (VirtioNetHeader, [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: VirtioNetHeader.size + 65536)
        for _ in 0..<50 {
            guard device.waitReadable(timeoutMilliseconds: 2000) else { break }
            let length = try buffer.withUnsafeMutableBytes { try device.read(into: $0) } ?? 0
            guard length > VirtioNetHeader.size + 28, let header = VirtioNetHeader(buffer) else { continue }
            let packet = Array(buffer[VirtioNetHeader.size..<length])
            guard packet[0] >> 4 == 4, packet[9] == 17, Int(packet[22]) << 8 | Int(packet[23]) == 9999 else { continue }
            return (header, packet)
        }
        throw CaptureError("no UDP packet came out of the TUN")
    }
}

final class LockedResult<T: Sendable>: @unchecked Sendable {
    private var value: Result<T, any Error>?
    private let lock = NSLock()
    func set(_ result: Result<T, any Error>) { lock.withLock { value = result } }
    func get() throws -> T {
        guard let value = lock.withLock({ value }) else { throw KernelSegmentationTests.CaptureError("no result") }
        return try value.get()
    }
}
