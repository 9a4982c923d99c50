import BYSTProto
import Foundation
import Glibc
import Testing
import CTun
@testable import Tun

/// TCP segmentation against the kernel's own, IPv4 and IPv6, on packets captured from a real
/// TUN in a private network namespace (see `KernelSegmentationTests`). The test plays the far end of
/// a TCP connection by hand: it answers the kernel's SYN through the TUN, then the local
/// socket sends 4,000 bytes twice — once with the TUN's offloads on (one TSO super-packet),
/// once with them off (the kernel's software segmentation of the same bytes, one sequence
/// span later). `GSOSegmenter`'s cut of the super-packet must match the kernel's segments
/// in every byte but the sequence number, the IPv4 id and the checksums; those must advance
/// as the kernel's do, and verify.
@Suite struct KernelTCPSegmentationTests {
    /// What differs between IPv4 and IPv6 here: addresses, the IP header, the pseudo-header.
    struct Family: Sendable, CustomStringConvertible {
        let name: String
        let domain: Int32
        let local: String, remote: String, prefixLength: Int
        let ipHeader: Int
        let gsoType: UInt8

        static let v4 = Family(name: "IPv4", domain: AF_INET, local: "10.231.2.1", remote: "10.231.2.2", prefixLength: 24,
                               ipHeader: 20, gsoType: VirtioNetHeader.gsoTCPv4)
        static let v6 = Family(name: "IPv6", domain: AF_INET6, local: "fd31::1", remote: "fd31::2", prefixLength: 64,
                               ipHeader: 40, gsoType: VirtioNetHeader.gsoTCPv6)
        var description: String { name }
        var isV4: Bool { domain == AF_INET }
        /// Where the TCP sequence number and checksum are.
        var sequenceAt: Int { ipHeader + 4 }
        var tcpChecksumAt: Int { ipHeader + 16 }
    }

    static let remotePort: UInt16 = 7777, remoteISN: UInt32 = 1_000_000
    /// Below both families' own MSS on a 1500-byte MTU, so the kernel uses this one.
    static let mss: UInt16 = 1400

    struct Capture: Sendable {
        var header: VirtioNetHeader
        var superPacket: [UInt8]
        var kernelSegments: [[UInt8]]
    }

    @Test(arguments: [Family.v4, Family.v6])
    func tcpSegmentationMatchesTheKernel(_ family: Family) throws {
        let payload = (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let capture = try KernelSegmentationTests.inPrivateNetworkNamespace { () throws -> Capture in
            let device = try TunDevice.open(name: "tso0", vnetHeader: true)
            defer { device.close() }
            _ = try device.enableOffloads()
            try InterfaceConfigurator.configure(interface: "tso0", addresses: [IPPrefix("\(family.local)/\(family.prefixLength)")!],
                                                mtu: 1500, routes: [])
            if !family.isV4 { try Self.waitForLocalRoute(to: family.local) }
            let socket = try Self.connect(family)
            defer { close(socket) }
            // The kernel's SYN, our SYN-ACK (MSS only: no timestamps, SACK or window scaling).
            // A lost SYN-ACK would not do: after a SYN retransmission the kernel starts with a
            // congestion window of one segment, and sends no super-packet.
            let syn = try Self.readTCP(device, family) { $0.flags & 0x02 != 0 }.packet
            let clientPort = UInt16(syn[family.ipHeader + 0]) << 8 | UInt16(syn[family.ipHeader + 1])
            let clientISN = Self.sequence(of: syn, family)
            try Self.write(device, Self.tcp(family, to: clientPort, seq: Self.remoteISN, ack: clientISN &+ 1, flags: 0x12,
                                            options: [2, 4, UInt8(Self.mss >> 8), UInt8(Self.mss & 0xFF)]))
            guard TunDevice.wait(fd: socket, for: Int16(POLLOUT), timeoutMilliseconds: 5000) else {
                throw KernelSegmentationTests.CaptureError("the connection did not complete")
            }

            try Self.send(payload, on: socket)
            let (header, superPacket) = try Self.readTCP(device, family) { $0.payloadLength > 0 }
            try Self.write(device, Self.tcp(family, to: clientPort, seq: Self.remoteISN &+ 1, ack: clientISN &+ 1 &+ 4000, flags: 0x10))

            // Offloads off: the kernel cuts (and checksums) the same bytes itself.
            guard byst_tun_set_offload(device.fd, 0) == 0 else { throw KernelSegmentationTests.CaptureError("TUNSETOFFLOAD 0 failed") }
            try Self.send(payload, on: socket)
            var segments: [[UInt8]] = []
            var received = 0
            while received < 4000 {
                var (segmentHeader, segment) = try Self.readTCP(device, family) { $0.payloadLength > 0 }
                #expect(!segmentHeader.isGSO)
                if segmentHeader.needsChecksum { try GSOSegmenter.completeChecksum(&segment, header: segmentHeader) }
                segmentHeader = .plain
                received += segment.count - family.ipHeader - 20
                segments.append(segment)
            }
            return Capture(header: header, superPacket: superPacket, kernelSegments: segments)
        }
        #expect(capture.header.gsoType & ~VirtioNetHeader.gsoECN == family.gsoType)
        #expect(capture.header.gsoSize == Self.mss)
        #expect(capture.superPacket.count == family.ipHeader + 20 + 4000)
        #expect(capture.kernelSegments.count == 3)

        var superPacket = capture.superPacket
        if capture.header.needsChecksum { try GSOSegmenter.completeChecksum(&superPacket, header: capture.header) }
        let ours = try GSOSegmenter.segments(of: superPacket, header: capture.header)
        #expect(ours.count == capture.kernelSegments.count)
        // The fields that differ between the two sends: the TCP sequence number and checksum,
        // and with IPv4 the id and header checksum.
        var masked = Set(family.sequenceAt..<(family.sequenceAt + 4)).union([family.tcpChecksumAt, family.tcpChecksumAt + 1])
        if family.isV4 { masked.formUnion([4, 5, 10, 11]) }
        let kernelFirst = capture.kernelSegments[0]
        for (index, (mine, kernel)) in zip(ours, capture.kernelSegments).enumerated() {
            #expect(mine.count == kernel.count, "segment \(index)")
            guard mine.count == kernel.count else { continue }
            let differing = mine.indices.filter { mine[$0] != kernel[$0] && !masked.contains($0) }
            #expect(differing.isEmpty, "segment \(index) differs at \(differing.prefix(8))")
            // Sequence numbers (and IPv4 ids) advance as the kernel's do.
            #expect(Self.sequence(of: mine, family) &- Self.sequence(of: ours[0], family)
                    == Self.sequence(of: kernel, family) &- Self.sequence(of: kernelFirst, family))
            if family.isV4 { #expect(Self.id(of: mine) &- Self.id(of: ours[0]) == Self.id(of: kernel) &- Self.id(of: kernelFirst)) }
            #expect(Self.checksumsVerify(mine, family), "segment \(index): our checksums")
            #expect(Self.checksumsVerify(kernel, family), "segment \(index): the kernel's checksums")
        }
        #expect(Self.sequence(of: ours[0], family) == Self.sequence(of: capture.superPacket, family))
    }

    // MARK: The hand-played far end

    static func connect(_ family: Family) throws -> Int32 {
        let fd = socket(family.domain, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw KernelSegmentationTests.CaptureError("socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let result: Int32
        if family.isV4 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = remotePort.bigEndian
            inet_pton(AF_INET, family.remote, &address.sin_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = remotePort.bigEndian
            inet_pton(AF_INET6, family.remote, &address.sin6_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        guard result == 0 || errno == EINPROGRESS else {
            close(fd)
            throw KernelSegmentationTests.CaptureError("connect: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Waits for the kernel to install the local route of a new IPv6 address. It does so from its
    /// address work queue, after the netlink request has returned; until then, packets to the
    /// address are dropped (seen on a loaded machine: the SYN-ACK lost, the test failing).
    static func waitForLocalRoute(to address: String) throws {
        let hex = Self.address(address, .v6).map { String(format: "%02x", $0) }.joined()
        for _ in 0..<500 {
            let routes = (try? String(contentsOfFile: "/proc/thread-self/net/ipv6_route", encoding: .utf8)) ?? ""
            if routes.split(separator: "\n").contains(where: { $0.hasPrefix("\(hex) 80 ") }) { return }
            usleep(10_000)
        }
        throw KernelSegmentationTests.CaptureError("no local route to \(address) after 5 s")
    }

    static func send(_ bytes: [UInt8], on fd: Int32) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw KernelSegmentationTests.CaptureError("send: \(sent), \(String(cString: strerror(errno)))") }
    }

    /// A TCP segment from the remote end to the local socket, checksums complete.
    static func tcp(_ family: Family, to port: UInt16, seq: UInt32, ack: UInt32, flags: UInt8, options: [UInt8] = []) -> [UInt8] {
        let tcpLength = 20 + options.count
        let ip = family.ipHeader
        var packet = [UInt8](repeating: 0, count: ip + tcpLength)
        let remote = address(family.remote, family), local = address(family.local, family)
        if family.isV4 {
            packet[0] = 0x45
            packet[2] = UInt8(packet.count >> 8); packet[3] = UInt8(packet.count & 0xFF)
            packet[6] = 0x40 // DF
            packet[8] = 64
            packet[9] = 6
            packet.replaceSubrange(12..<16, with: remote)
            packet.replaceSubrange(16..<20, with: local)
            let ipSum = ~onesComplementSum(packet[0..<20])
            packet[10] = UInt8(ipSum >> 8); packet[11] = UInt8(ipSum & 0xFF)
        } else {
            packet[0] = 0x60
            packet[4] = UInt8(tcpLength >> 8); packet[5] = UInt8(tcpLength & 0xFF)
            packet[6] = 6
            packet[7] = 64
            packet.replaceSubrange(8..<24, with: remote)
            packet.replaceSubrange(24..<40, with: local)
        }
        packet[ip] = UInt8(remotePort >> 8); packet[ip + 1] = UInt8(remotePort & 0xFF)
        packet[ip + 2] = UInt8(port >> 8); packet[ip + 3] = UInt8(port & 0xFF)
        put(seq, into: &packet, at: ip + 4)
        put(ack, into: &packet, at: ip + 8)
        packet[ip + 12] = UInt8(tcpLength / 4) << 4
        packet[ip + 13] = flags
        packet[ip + 14] = 0xFF; packet[ip + 15] = 0xFF // window 65535
        packet.replaceSubrange((ip + 20)..<(ip + 20 + options.count), with: options)
        let tcpSum = ~onesComplementSum(pseudoHeader(packet, family) + packet[ip...])
        packet[ip + 16] = UInt8(tcpSum >> 8); packet[ip + 17] = UInt8(tcpSum & 0xFF)
        return packet
    }

    static func write(_ device: TunDevice, _ packet: [UInt8]) throws {
        let header = VirtioNetHeader.plain.bytes
        let written = header.withUnsafeBytes { h in packet.withUnsafeBytes { device.write(header: h, packet: $0) } }
        guard written else { throw KernelSegmentationTests.CaptureError("TUN write: \(String(cString: strerror(errno)))") }
    }

    struct Segment {
        let flags: UInt8
        let payloadLength: Int
    }

    /// The next TCP packet of `family` to the remote port that `matches`, skipping others
    /// (router solicitations, say).
    static func readTCP(_ device: TunDevice, _ family: Family, matching matches: (Segment) -> Bool) throws
        -> (header: VirtioNetHeader, packet: [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: VirtioNetHeader.size + 65536)
        let ip = family.ipHeader
        for _ in 0..<50 {
            guard device.waitReadable(timeoutMilliseconds: 2000) else { break }
            let length = try buffer.withUnsafeMutableBytes { try device.read(into: $0) } ?? 0
            guard length >= VirtioNetHeader.size + ip + 20, let header = VirtioNetHeader(buffer) else { continue }
            let packet = Array(buffer[VirtioNetHeader.size..<length])
            let isTCP = family.isV4 ? packet[0] == 0x45 && packet[9] == 6 : packet[0] >> 4 == 6 && packet[6] == 6
            guard isTCP, UInt16(packet[ip + 2]) << 8 | UInt16(packet[ip + 3]) == remotePort else { continue }
            let segment = Segment(flags: packet[ip + 13], payloadLength: packet.count - ip - Int(packet[ip + 12] >> 4) * 4)
            if matches(segment) { return (header, packet) }
        }
        throw KernelSegmentationTests.CaptureError("no matching TCP packet came out of the TUN")
    }

    // MARK: Fields and an independent checksum

    static func sequence(of packet: [UInt8], _ family: Family) -> UInt32 {
        packet[family.sequenceAt..<(family.sequenceAt + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func id(of packet: [UInt8]) -> UInt16 { UInt16(packet[4]) << 8 | UInt16(packet[5]) }

    static func address(_ text: String, _ family: Family) -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: family.isV4 ? 4 : 16)
        _ = raw.withUnsafeMutableBytes { inet_pton(family.domain, text, $0.baseAddress) }
        return raw
    }

    static func put(_ value: UInt32, into packet: inout [UInt8], at offset: Int) {
        for index in 0..<4 { packet[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    static func pseudoHeader(_ packet: [UInt8], _ family: Family) -> [UInt8] {
        let tcpLength = packet.count - family.ipHeader
        let addresses = family.isV4 ? Array(packet[12..<20]) : Array(packet[8..<40])
        let length: [UInt8] = family.isV4 ? [UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
                                          : [0, 0, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
        return family.isV4 ? addresses + [0, 6] + length : addresses + length + [0, 0, 0, 6]
    }

    static func onesComplementSum<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var sum: UInt32 = 0
        var high = true
        for byte in bytes {
            sum += high ? UInt32(byte) << 8 : UInt32(byte)
            high.toggle()
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt16(sum)
    }

    /// The TCP checksum (and with IPv4 the header checksum) verifies: sums to all ones.
    static func checksumsVerify(_ packet: [UInt8], _ family: Family) -> Bool {
        let tcp = onesComplementSum(pseudoHeader(packet, family) + packet[family.ipHeader...]) == 0xFFFF
        return family.isV4 ? tcp && onesComplementSum(packet[0..<20]) == 0xFFFF : tcp
    }
}
