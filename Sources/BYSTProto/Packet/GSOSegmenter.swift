/// What the kernel would have done to an offloaded packet, in user space: finish a partial
/// transport checksum, or cut a GSO super-packet into wire-size segments with their own
/// headers and checksums (TCP over IPv4/IPv6, UDP with `UDP_L4` segmentation). Used when
/// the other end's TUN cannot take the packet whole (PROTOCOL.md §5.4).
///
/// Segments follow the kernel's rules (net/ipv4/tcp_offload.c, udp_offload.c): each carries
/// the headers of the super-packet with the IP length (and IPv4 id, incremented per segment,
/// and header checksum) fixed; TCP sequence numbers advance by the payload; FIN and PSH only
/// on the last segment, CWR only on the first; UDP length per segment.
public enum GSOSegmenter {
    public enum Failure: Error, Equatable, Sendable {
        case malformed(String)
        case unsupported(String)
    }

    /// Completes the checksum a `NEEDS_CSUM` header says is partial: the 16-bit field at
    /// `checksumStart + checksumOffset` holds the pseudo-header sum; the checksum covers
    /// everything from `checksumStart` to the end.
    public static func completeChecksum(_ packet: inout [UInt8], header: VirtioNetHeader) throws(Failure) {
        let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
        guard start < packet.count, field + 2 <= packet.count else { throw .malformed("checksum offsets outside the packet") }
        var sum = InternetChecksum()
        sum.add(packet[start...])
        let checksum = sum.finish()
        // A UDP checksum of 0 means "none": the sum's one's complement zero is sent as 0xFFFF.
        let value = checksum == 0 ? 0xFFFF : checksum
        packet[field] = UInt8(value >> 8)
        packet[field + 1] = UInt8(value & 0xFF)
    }

    /// The packet as the wire would carry it: one packet with a complete checksum, or the
    /// segments of a GSO super-packet.
    public static func segments(of packet: [UInt8], header: VirtioNetHeader) throws(Failure) -> [[UInt8]] {
        var segments: [[UInt8]] = []
        var scratch: [UInt8] = []
        try forEachSegment(of: packet, header: header, scratch: &scratch) { segments.append($0) }
        return segments
    }

    /// The same, one segment at a time, each built in `scratch` (reused: no array per
    /// segment) and handed to `body` in order. A packet that is refused throws before
    /// `body` sees any segment of it.
    public static func forEachSegment(
        of packet: [UInt8], header: VirtioNetHeader, scratch: inout [UInt8], _ body: ([UInt8]) -> Void
    ) throws(Failure) {
        guard header.isGSO else {
            guard header.needsChecksum else { return body(packet) }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: packet)
            try completeChecksum(&scratch, header: header)
            return body(scratch)
        }
        guard let ip = IPPacket(packet) else { throw .malformed("not an IPv4/IPv6 packet") }
        let type = header.gsoType & ~VirtioNetHeader.gsoECN
        let gsoSize = Int(header.gsoSize)
        guard gsoSize > 0 else { throw .malformed("GSO size 0") }
        let transport = ip.transportOffset
        // Where the IP length says the packet ends (IPPacket checked it is within the bytes).
        let end = ip.version == 4 ? (Int(packet[2]) << 8 | Int(packet[3])) : 40 + (Int(packet[4]) << 8 | Int(packet[5]))
        switch (type, ip.transport) {
        case (VirtioNetHeader.gsoTCPv4, IPPacket.tcp) where ip.version == 4, (VirtioNetHeader.gsoTCPv6, IPPacket.tcp) where ip.version == 6:
            guard packet.count >= transport + 20 else { throw .malformed("truncated TCP header") }
            let tcpLength = Int(packet[transport + 12] >> 4) * 4
            guard tcpLength >= 20, packet.count >= transport + tcpLength else { throw .malformed("bad TCP header length") }
            guard transport + tcpLength <= end else { throw .malformed("transport header beyond the IP length") }
            split(packet, ip: ip, headerEnd: transport + tcpLength, end: end, gsoSize: gsoSize, into: &scratch, body: body) { segment, index, last, _ in
                let seqAt = transport + 4
                let sequence = (UInt32(segment[seqAt]) << 24 | UInt32(segment[seqAt + 1]) << 16
                    | UInt32(segment[seqAt + 2]) << 8 | UInt32(segment[seqAt + 3])) &+ UInt32(truncatingIfNeeded: index * gsoSize)
                for byte in 0..<4 { segment[seqAt + byte] = UInt8(truncatingIfNeeded: sequence >> (24 - 8 * UInt32(byte))) }
                if !last { segment[transport + 13] &= ~UInt8(0x09) }  // FIN, PSH
                if index > 0 { segment[transport + 13] &= ~UInt8(0x80) }  // CWR
                InternetChecksum.setTransport(&segment, ip: ip, protocolNumber: IPPacket.tcp, field: transport + 16, end: segment.count)
            }
        case (VirtioNetHeader.gsoUDPL4, IPPacket.udp):
            guard packet.count >= transport + 8 else { throw .malformed("truncated UDP header") }
            guard transport + 8 <= end else { throw .malformed("transport header beyond the IP length") }
            split(packet, ip: ip, headerEnd: transport + 8, end: end, gsoSize: gsoSize, into: &scratch, body: body) { segment, _, _, payload in
                let length = 8 + payload
                segment[transport + 4] = UInt8(length >> 8)
                segment[transport + 5] = UInt8(length & 0xFF)
                InternetChecksum.setTransport(&segment, ip: ip, protocolNumber: IPPacket.udp, field: transport + 6, end: segment.count)
            }
        default:
            throw .unsupported("GSO type \(type) for IP protocol \(ip.transport)")
        }
    }

    /// Copies the headers before each `gsoSize` piece of the payload up to `end` (the IP
    /// length; `headerEnd <= end`) into `segment`, fixes the IP header, lets `fix` do the
    /// transport header (segment, index, is last, payload length) and hands it to `body`.
    private static func split(_ packet: [UInt8], ip: IPPacket, headerEnd: Int, end: Int, gsoSize: Int, into segment: inout [UInt8],
                              body: ([UInt8]) -> Void, fix: (inout [UInt8], Int, Bool, Int) -> Void) {
        let payloadLength = end - headerEnd
        let count = max(1, (payloadLength + gsoSize - 1) / gsoSize)
        let ipID = Int(packet[4]) << 8 | Int(packet[5])
        for index in 0..<count {
            let from = headerEnd + index * gsoSize
            let piece = min(gsoSize, end - from)
            segment.removeAll(keepingCapacity: true)
            segment.append(contentsOf: packet[0..<headerEnd])
            segment.append(contentsOf: packet[from..<(from + piece)])
            let total = segment.count
            if ip.version == 4 {
                segment[2] = UInt8(total >> 8)
                segment[3] = UInt8(total & 0xFF)
                let id = (ipID + index) & 0xFFFF
                segment[4] = UInt8(id >> 8)
                segment[5] = UInt8(id & 0xFF)
                let headerLength = ip.transportOffset
                segment[10] = 0
                segment[11] = 0
                var sum = InternetChecksum()
                sum.add(segment[0..<headerLength])
                let checksum = sum.finish()
                segment[10] = UInt8(checksum >> 8)
                segment[11] = UInt8(checksum & 0xFF)
            } else {
                let payload = total - 40
                segment[4] = UInt8(payload >> 8)
                segment[5] = UInt8(payload & 0xFF)
            }
            fix(&segment, index, index == count - 1, piece)
            body(segment)
        }
    }
}
