import BYSTProto

/// The steps every packet read from the TUN takes on its way to a peer (on the data plane,
/// whichever thread holds the peer's links): parse the
/// virtio-net header and the packet (completing a checksum the kernel left to us), then hand
/// it on as frames — a GSO super-packet whole when the peer's TUN takes it, else cut into
/// wire-size packets, and a plain packet after MSS clamping.
struct TunPacketReader {
    /// The packet being routed, as an array (parsing, checksums and clamping work on arrays),
    /// and each segment of a super-packet cut here; both reused, so nothing is allocated per packet.
    private(set) var scratch: [UInt8] = []
    private var segmentScratch: [UInt8] = []

    /// One read: the virtio-net header (when the TUN has them), then the packet. Nil if it is
    /// not an IP packet (or its checksum cannot be completed).
    mutating func parse(_ read: UnsafeRawBufferPointer, vnetHeader: Bool) -> (header: VirtioNetHeader, packet: IPPacket)? {
        let headerSize = vnetHeader ? VirtioNetHeader.size : 0
        guard read.count > headerSize else { return nil }
        let header = headerSize == 0 ? VirtioNetHeader.plain : VirtioNetHeader(read) ?? .plain
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: read[headerSize...]))
        // Before parsing: an `IPPacket` holds slices of `scratch`, and writing to the array
        // while one is alive would copy it.
        if header.needsChecksum, !header.isGSO {
            do throws(GSOSegmenter.Failure) { try GSOSegmenter.completeChecksum(&scratch, header: header) } catch {
                return nil
            }
        }
        guard let packet = IPPacket(scratch) else { return nil }
        return (header, packet)
    }

    /// Whether a parsed super-packet goes whole to a peer whose TUN takes them and whose
    /// records carry `maxPayload` bytes: one frame instead of up to 45 packets.
    func fitsWhole(header: VirtioNetHeader, peerTakesOffloadPackets: Bool, maxPayload: Int) -> Bool {
        header.isGSO && peerTakesOffloadPackets
            && scratch.count + Frame.packetHeaderSize + Frame.offloadHeaderSize <= maxPayload
    }

    /// Hands the parsed packet to `body` as frames: whole (with its header as the offload
    /// header) when `whole`, else a super-packet's segments, else the packet MSS-clamped.
    /// False if a super-packet cannot be cut (nothing was handed on).
    mutating func forEachFrame(header: VirtioNetHeader, packet: IPPacket, whole: Bool, mtu: Int,
                               _ body: (UnsafeRawBufferPointer, VirtioNetHeader?) -> Void) -> Bool {
        if whole {
            scratch.withUnsafeBytes { body($0, header) }
            return true
        }
        if header.isGSO {
            do throws(GSOSegmenter.Failure) {
                try GSOSegmenter.forEachSegment(of: scratch, header: header, scratch: &segmentScratch) { segment in
                    segment.withUnsafeBytes { body($0, nil) }
                }
            } catch {
                return false
            }
            return true
        }
        MSSClamp.clamp(&scratch, packet: packet, mtu: mtu)
        scratch.withUnsafeBytes { body($0, nil) }
        return true
    }
}
