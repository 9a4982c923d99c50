import NIOCore
import Testing
@testable import BYSTProto

/// User-space segmentation and checksum completion of offloaded packets, checked by an
/// independent verifier: every segment's checksums sum to 0xFFFF, payloads concatenate to the
/// original, and the header fields follow the kernel's rules.
@Suite struct GSOSegmenterTests {
    /// A TCP (or UDP) super-packet as the kernel hands it to a TUN with offloads: partial
    /// checksum (pseudo-header sum only) in the checksum field.
    static func superPacket(ipv6: Bool, udp: Bool, payload: [UInt8], flags: UInt8 = 0x18, sequence: UInt32 = 0xFFFF_FF00)
        -> ([UInt8], VirtioNetHeader)
    {
        let ipLength = ipv6 ? 40 : 20, transportLength = udp ? 8 : 20
        let total = ipLength + transportLength + payload.count
        var packet = [UInt8](repeating: 0, count: total)
        if ipv6 {
            packet[0] = 0x60
            packet[4] = UInt8((total - 40) >> 8); packet[5] = UInt8((total - 40) & 0xFF)
            packet[6] = udp ? 17 : 6; packet[7] = 64
            packet[8] = 0xFD; packet[23] = 1; packet[24] = 0xFD; packet[39] = 2
        } else {
            packet[0] = 0x45
            packet[2] = UInt8(total >> 8); packet[3] = UInt8(total & 0xFF)
            packet[4] = 0x12; packet[5] = 0x34; packet[6] = 0x40
            packet[8] = 64; packet[9] = udp ? 17 : 6
            packet[12...15] = [10, 0, 0, 1]; packet[16...19] = [10, 0, 0, 2]
        }
        let t = ipLength
        packet[t] = 0xC3; packet[t + 1] = 0x50; packet[t + 2] = 0x14; packet[t + 3] = 0x51
        if udp {
            packet[t + 4] = UInt8((total - t) >> 8); packet[t + 5] = UInt8((total - t) & 0xFF)
        } else {
            for byte in 0..<4 { packet[t + 4 + byte] = UInt8(truncatingIfNeeded: sequence >> (24 - 8 * UInt32(byte))) }
            packet[t + 12] = 0x50; packet[t + 13] = flags | 0x80; packet[t + 14] = 0xFF
        }
        packet.replaceSubrange((t + transportLength)..., with: payload)
        // Pseudo-header sum, not complemented, as CHECKSUM_PARTIAL leaves it.
        var sum: UInt32 = 0
        let addresses = ipv6 ? Array(packet[8..<40]) : Array(packet[12..<20])
        for i in stride(from: 0, to: addresses.count, by: 2) { sum += UInt32(addresses[i]) << 8 | UInt32(addresses[i + 1]) }
        sum += UInt32(udp ? 17 : 6) + UInt32(total - t)
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        let field = t + (udp ? 6 : 16)
        packet[field] = UInt8(sum >> 8); packet[field + 1] = UInt8(sum & 0xFF)
        let type = udp ? VirtioNetHeader.gsoUDPL4 : (ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: type, headerLength: UInt16(t + transportLength),
                                     gsoSize: 1000, checksumStart: UInt16(t), checksumOffset: udp ? 6 : 16)
        return (packet, header)
    }

    /// The independent check: one's complement sum over pseudo-header and segment is 0xFFFF.
    static func transportChecksumValid(_ p: [UInt8]) -> Bool {
        let v6 = p[0] >> 4 == 6, t = v6 ? 40 : Int(p[0] & 0x0F) * 4
        let total = v6 ? 40 + (Int(p[4]) << 8 | Int(p[5])) : Int(p[2]) << 8 | Int(p[3])
        var words: [UInt32] = []
        let addresses = v6 ? Array(p[8..<40]) : Array(p[12..<20])
        for i in stride(from: 0, to: addresses.count, by: 2) { words.append(UInt32(addresses[i]) << 8 | UInt32(addresses[i + 1])) }
        words.append(UInt32(v6 ? p[6] : p[9]))
        words.append(UInt32(total - t))
        var i = t
        while i < total { words.append(UInt32(p[i]) << 8 | UInt32(i + 1 < total ? p[i + 1] : 0)); i += 2 }
        var sum = words.reduce(0, +)
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return sum == 0xFFFF
    }

    static func ipv4HeaderValid(_ p: [UInt8]) -> Bool {
        var sum: UInt32 = 0
        for i in stride(from: 0, to: Int(p[0] & 0x0F) * 4, by: 2) { sum += UInt32(p[i]) << 8 | UInt32(p[i + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return sum == 0xFFFF
    }

    static let payload = (0..<3500).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    @Test(arguments: [false, true]) func tcpSuperPacketsBecomeValidSegments(ipv6: Bool) throws {
        let (packet, header) = Self.superPacket(ipv6: ipv6, udp: false, payload: Self.payload, flags: 0x19)  // FIN PSH ACK
        let segments = try GSOSegmenter.segments(of: packet, header: header)
        #expect(segments.map(\.count) == [1000, 1000, 1000, 500].map { $0 + (ipv6 ? 60 : 40) })
        var joined: [UInt8] = []
        for (index, segment) in segments.enumerated() {
            let t = ipv6 ? 40 : 20
            #expect(Self.transportChecksumValid(segment), "segment \(index)")
            if !ipv6 {
                #expect(Self.ipv4HeaderValid(segment))
                #expect(Int(segment[4]) << 8 | Int(segment[5]) == 0x1234 + index)
            }
            let sequence = UInt32(segment[t + 4]) << 24 | UInt32(segment[t + 5]) << 16 | UInt32(segment[t + 6]) << 8 | UInt32(segment[t + 7])
            #expect(sequence == 0xFFFF_FF00 &+ UInt32(index * 1000))  // wraps past 2^32
            let last = index == segments.count - 1
            #expect(segment[t + 13] & 0x09 == (last ? 0x09 : 0))  // FIN, PSH only on the last
            #expect(segment[t + 13] & 0x80 == (index == 0 ? 0x80 : 0))  // CWR only on the first
            joined += segment[(t + 20)...]
        }
        #expect(joined == Self.payload)
    }

    @Test(arguments: [false, true]) func udpSuperPacketsBecomeValidDatagrams(ipv6: Bool) throws {
        let (packet, header) = Self.superPacket(ipv6: ipv6, udp: true, payload: Self.payload)
        let segments = try GSOSegmenter.segments(of: packet, header: header)
        #expect(segments.count == 4)
        var joined: [UInt8] = []
        for segment in segments {
            let t = ipv6 ? 40 : 20
            #expect(Self.transportChecksumValid(segment))
            #expect(Int(segment[t + 4]) << 8 | Int(segment[t + 5]) == segment.count - t)
            joined += segment[(t + 8)...]
        }
        #expect(joined == Self.payload)
    }

    @Test func partialChecksumIsCompleted() throws {
        var (packet, header) = Self.superPacket(ipv6: false, udp: false, payload: Array(Self.payload.prefix(700)))
        header.gsoType = VirtioNetHeader.gsoNone
        #expect(!Self.transportChecksumValid(packet))
        let whole = try GSOSegmenter.segments(of: packet, header: header)
        #expect(whole.count == 1)
        #expect(Self.transportChecksumValid(whole[0]))
        try GSOSegmenter.completeChecksum(&packet, header: header)
        #expect(packet == whole[0])
    }

    @Test func hostileHeadersAreErrorsNotCrashes() {
        let (packet, header) = Self.superPacket(ipv6: false, udp: false, payload: Self.payload)
        var bad = header
        bad.gsoSize = 0
        #expect(throws: GSOSegmenter.Failure.malformed("GSO size 0")) { try GSOSegmenter.segments(of: packet, header: bad) }
        bad = header
        bad.gsoType = VirtioNetHeader.gsoTCPv6  // IPv4 packet
        #expect(throws: GSOSegmenter.Failure.self) { try GSOSegmenter.segments(of: packet, header: bad) }
        bad = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 60_000, checksumOffset: 16)
        #expect(throws: GSOSegmenter.Failure.self) { try GSOSegmenter.segments(of: packet, header: bad) }
        #expect(throws: GSOSegmenter.Failure.self) { try GSOSegmenter.segments(of: Array(packet.prefix(30)), header: header) }
        // The IP length ends inside the transport header (the bytes after it are there): an
        // error, not a segment cut from a negative length.
        for (ipv6, udp) in [(false, false), (false, true), (true, false), (true, true)] {
            var (short, shortHeader) = Self.superPacket(ipv6: ipv6, udp: udp, payload: Self.payload)
            if ipv6 { short[4] = 0; short[5] = 4 } else { short[2] = 0; short[3] = 24 }
            #expect(throws: GSOSegmenter.Failure.malformed("transport header beyond the IP length")) {
                try GSOSegmenter.segments(of: short, header: shortHeader)
            }
            shortHeader.gsoType = VirtioNetHeader.gsoNone
            #expect(throws: Never.self) { try GSOSegmenter.segments(of: short, header: shortHeader) }
        }
        var generator = SplitMix64(seed: 11)
        for _ in 0..<3_000 {
            var mutated = packet
            for _ in 0..<4 { mutated[Int(generator.next() % UInt64(60))] = UInt8(truncatingIfNeeded: generator.next()) }
            let cut = Array(mutated.prefix(Int(generator.next() % UInt64(mutated.count))))
            var random = header
            random.gsoSize = UInt16(truncatingIfNeeded: generator.next() % 3000)
            random.checksumStart = UInt16(truncatingIfNeeded: generator.next() % 80)
            random.checksumOffset = UInt16(truncatingIfNeeded: generator.next() % 40)
            _ = try? GSOSegmenter.segments(of: cut, header: random)
        }
    }

    @Test func headerRoundTripsLittleEndian() {
        let header = VirtioNetHeader(flags: 1, gsoType: 0x84, headerLength: 0x0102, gsoSize: 1448, checksumStart: 40, checksumOffset: 16)
        #expect(header.bytes == [1, 0x84, 2, 1, 0xA8, 5, 40, 0, 16, 0])
        #expect(VirtioNetHeader(header.bytes) == header)
        var buffer = ByteBuffer()
        header.write(into: &buffer)
        #expect(Array(buffer.readableBytesView) == header.bytes)
        #expect(header.isGSO)
        #expect(VirtioNetHeader([1, 2, 3]) == nil)
    }
}
