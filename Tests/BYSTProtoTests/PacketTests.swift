import NIOCore
import Testing
@testable import BYSTProto

@Suite struct PacketTests {
    @Test func prefixesParseFormatAndMatch() throws {
        let v4 = try #require(IPPrefix("10.1.2.3/16"))
        #expect(v4.description == "10.1.2.3/16")
        #expect(v4.network.description == "10.1.0.0/16")
        #expect(v4.contains([10, 1, 200, 7]))
        #expect(!v4.contains([10, 2, 0, 1]))
        let v6 = try #require(IPPrefix("fd00:1::1/64"))
        #expect(v6.isIPv6)
        #expect(v6.network.description == "fd00:1::/64")
        #expect(IPPrefix("::1")?.description == "::1/128")
        #expect(IPPrefix("::ffff:192.0.2.1")?.description == "::ffff:c000:201/128")
        #expect(IPPrefix("2001:db8:0:0:1:0:0:1/128")?.addressDescription == "2001:db8::1:0:0:1")
        for bad in ["10.0.0.256/8", "10.0.0/8", "10.0.0.1/33", "fd00::1/129", "fd00::+1", "1.2.3.4::", "010.0.0.1",
                    "1::2::3", "fd00:::1", "10.0.0.1/-1", "10.0.0.1/a", "", "/8", "g::1"] {
            #expect(IPPrefix(bad) == nil, "\(bad) accepted")
        }
    }

    @Test func allowedIPsPickTheLongestPrefix() throws {
        var table = AllowedIPs<String>()
        table.insert(try #require(IPPrefix("10.0.0.0/8")), peer: "wide")
        table.insert(try #require(IPPrefix("10.1.0.0/16")), peer: "branch")
        table.insert(try #require(IPPrefix("fd00::/16")), peer: "v6")
        #expect(table.lookup([10, 1, 3, 4]) == "branch")
        #expect(table.lookup([10, 9, 3, 4]) == "wide")
        #expect(table.lookup([192, 168, 0, 1]) == nil)
        #expect(table.lookup([0xfd, 0] + [UInt8](repeating: 1, count: 14)) == "v6")
        // Whatever the order of insertion: the default route last, equal lengths first come first.
        var reversed = AllowedIPs<String>()
        for (prefix, peer) in [("0.0.0.0/0", "default"), ("10.1.0.0/16", "branch"), ("10.0.0.0/8", "wide"),
                               ("10.1.2.0/24", "office"), ("10.1.0.0/16", "second")] {
            reversed.insert(try #require(IPPrefix(prefix)), peer: peer)
        }
        // The second 10.1.0.0/16 is not held: an equal prefix stays with its first peer.
        #expect(reversed.count == 4)
        #expect(reversed.lookup([10, 1, 2, 9]) == "office")
        #expect(reversed.lookup([10, 1, 3, 4]) == "branch")
        #expect(reversed.lookup([10, 9, 3, 4]) == "wide")
        #expect(reversed.lookup([192, 168, 0, 1]) == "default")
    }

    /// Against a plain longest-prefix scan: thousands of random IPv4 and IPv6 prefixes of
    /// every length, and addresses inside and around them.
    @Test func allowedIPsAgreeWithALinearScan() throws {
        var generator = SplitMix(seed: 42)
        var table = AllowedIPs<Int>()
        var reference: [(IPPrefix, Int)] = []
        for index in 0..<3000 {
            let v6 = generator.next() % 4 == 0
            let address = (0..<(v6 ? 16 : 4)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Mostly host routes and a few short prefixes, as on a hub.
            let length = generator.next() % 3 == 0 ? Int(generator.next() % UInt64(address.count * 8 + 1)) : address.count * 8
            let prefix = try #require(IPPrefix(address: address, length: length)).network
            table.insert(prefix, peer: index)
            if !reference.contains(where: { $0.0 == prefix }) { reference.append((prefix, index)) }
        }
        #expect(table.count == reference.count)
        for (prefix, _) in reference.prefix(500) {
            for flip in [nil, prefix.address.count - 1, 0] as [Int?] {
                var address = prefix.address
                if let flip { address[flip] ^= UInt8(truncatingIfNeeded: generator.next() | 1) }
                let expected = reference.filter { $0.0.isIPv6 == (address.count == 16) && $0.0.contains(address) }
                    .max { $0.0.length < $1.0.length }?.1
                #expect(table.lookup(ArraySlice(address)) == expected, "\(address)")
            }
        }
    }

    /// An IPv4 TCP SYN from 10.1.0.1:40000 to 10.2.0.1:5201 with MSS 1460, as the kernel
    /// builds it, with a correct checksum.
    func ipv4SYN(mss: UInt16 = 1460) -> [UInt8] {
        var packet: [UInt8] = [0x45, 0, 0, 44, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1]
        packet += [0x9C, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xFA, 0xF0, 0, 0, 0, 0]
        packet += [2, 4, UInt8(mss >> 8), UInt8(mss & 0xFF)]
        if let parsed = IPPacket(packet) { MSSClamp.setTransportChecksum(&packet, packet: parsed) }
        return packet
    }

    /// One's-complement sum over pseudo-header and segment: 0xFFFF when the checksum is right.
    func tcpChecksumValid(_ packet: [UInt8]) -> Bool {
        guard let parsed = IPPacket(packet) else { return false }
        var copy = packet
        let stored = [packet[parsed.transportOffset + 16], packet[parsed.transportOffset + 17]]
        MSSClamp.setTransportChecksum(&copy, packet: parsed)
        return [copy[parsed.transportOffset + 16], copy[parsed.transportOffset + 17]] == stored
    }

    @Test func mssIsClampedOnSYNsWithAValidChecksum() throws {
        var syn = ipv4SYN()
        let changed = MSSClamp.clamp(&syn, mtu: 1400)
        #expect(changed)
        #expect(Array(syn[40..<44]) == [2, 4, 0x05, 0x50])  // 1360 = 1400 − 40
        #expect(tcpChecksumValid(syn))
        // A smaller MSS is left alone, and so is a non-SYN segment.
        var small = ipv4SYN(mss: 1200)
        let changedSmall = MSSClamp.clamp(&small, mtu: 1400)
        #expect(!changedSmall)
        var ack = ipv4SYN()
        ack[33] = 0x10
        let changedAck = MSSClamp.clamp(&ack, mtu: 1400)
        #expect(!changedAck)
        // Reference checksum of this SYN, computed independently (Python struct, RFC 793 sum).
        #expect(Array(ipv4SYN()[36..<38]) == [0xD8, 0x9E])
    }

    @Test func ipv6SYNIsClampedToMTUMinusSixty() throws {
        var packet: [UInt8] = [0x60, 0, 0, 0, 0, 24, 6, 64]
        packet += [0xfd, 0x01] + [UInt8](repeating: 0, count: 13) + [1]
        packet += [0xfd, 0x02] + [UInt8](repeating: 0, count: 13) + [1]
        packet += [0x9C, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xFA, 0xF0, 0, 0, 0, 0, 2, 4, 0x05, 0xA0]
        let changed = MSSClamp.clamp(&packet, mtu: 1280)
        #expect(changed)
        #expect(Array(packet[60..<64]) == [2, 4, 0x04, 0xC4])  // 1220 = 1280 − 60
        #expect(tcpChecksumValid(packet))
    }

    /// A received super-packet's source is checked on its header alone (TunPump.offloadedFromPeer).
    @Test func aHeaderIsParsedAgainstTheWholePacketsLength() throws {
        // IPv4, total length 40,000: the first 60 bytes stand for the super-packet.
        var v4 = [UInt8](repeating: 0, count: 60)
        v4[0] = 0x45
        v4[2] = UInt8(40_000 >> 8)
        v4[3] = UInt8(40_000 & 0xFF)
        v4[9] = IPPacket.tcp
        v4.replaceSubrange(12..<16, with: [10, 1, 2, 3])
        let parsed = try #require(IPPacket(v4, length: 40_000))
        #expect(Array(parsed.source) == [10, 1, 2, 3])
        #expect(IPPacket(v4) == nil, "as a whole packet, its length runs past the bytes")
        #expect(IPPacket(v4, length: 39_999) == nil, "the frame is shorter than the header says")
        #expect(IPPacket(Array(v4.prefix(19)), length: 40_000) == nil, "no complete header")
        // IPv6, payload length 30,000.
        var v6 = [UInt8](repeating: 0, count: 60)
        v6[0] = 0x60
        v6[4] = UInt8(30_000 >> 8)
        v6[5] = UInt8(30_000 & 0xFF)
        v6[8] = 0xFD
        #expect(try #require(IPPacket(v6, length: 30_040)).source.first == 0xFD)
        #expect(IPPacket(v6, length: 30_039) == nil)
        #expect(IPPacket(v6, length: 59) == nil, "more bytes than the packet has")
    }

    @Test func flowsHashStablyAndMalformedPacketsAreRejected() throws {
        let syn = ipv4SYN()
        let parsed = try #require(IPPacket(syn))
        #expect(parsed.flowHash(syn) == parsed.flowHash(syn))
        var otherPort = syn
        otherPort[21] = 0x41
        #expect(try #require(IPPacket(otherPort)).flowHash(otherPort) != parsed.flowHash(syn))
        #expect(IPPacket([]) == nil)
        #expect(IPPacket([0x45, 0, 0, 200] + [UInt8](repeating: 0, count: 16)) == nil)  // length past the end
        #expect(IPPacket([0x60] + [UInt8](repeating: 0, count: 20)) == nil)
        #expect(IPPacket([0x15] + [UInt8](repeating: 0, count: 40)) == nil)
        for cut in 0..<syn.count {
            var truncated = Array(syn.prefix(cut))
            _ = MSSClamp.clamp(&truncated, mtu: 1400)  // never traps
        }
    }

    @Test func packetFramesRoundTripAndOversizedPacketsAreDropped() throws {
        var pair = SessionPair(links: 2)
        let packet = ByteBuffer(bytes: ipv4SYN())
        let queued = pair.a.sendPacket(packet, flowHash: 7)
        #expect(queued)
        let tooBig = pair.a.sendPacket(ByteBuffer(bytes: [UInt8](repeating: 0, count: 70_000)), flowHash: 1)
        #expect(!tooBig)
        // Queued, but larger than the 16 KiB records of this pair: dropped when sending.
        let huge = pair.a.sendPacket(ByteBuffer(bytes: [UInt8](repeating: 0x45, count: 40_000)), flowHash: 8)
        #expect(huge)
        try pair.step()
        #expect(pair.eventsAtB.contains(.packet(packet)))
        #expect(pair.a.packetsDropped == 2)
    }
}

/// A small deterministic generator for property tests.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
