import BYSTProto
import Tun

/// Writes the packets peers send to the TUN, after the checks each one passes: it must be an
/// IP packet whose source the routing table gives to the sending peer — the peer holding the
/// longest matching prefix, WireGuard's rule: with `10.0.0.0/8` on one peer and `10.1.0.0/24`
/// on another, only the second may send from `10.1.0.5` (else it is dropped as spoofed) —
/// and a TCP SYN's MSS is clamped. An `offloadPacket` frame (PROTOCOL.md §5.4) goes
/// whole to a TUN that takes offloads, else it is cut into packets here. The data plane's;
/// the caller counts outcomes.
struct TunPacketWriter {
    enum Outcome {
        case written, writtenWhole, malformed, spoofedSource, writeFailed
    }

    let device: TunDevice
    let mtu: Int
    /// The TUN takes virtio-net headers with offloads: super-packets are written whole.
    let writesWhole: Bool
    /// The packet being written, as an array (parsing, checksums and clamping work on
    /// arrays), and each segment of a super-packet cut here; both reused.
    private var scratch: [UInt8] = []
    private var segmentScratch: [UInt8] = []
    /// Stored, not a static: a static is reached through a lazy initializer's check per packet.
    private let plainHeader = VirtioNetHeader.plain.bytes

    init(device: TunDevice, mtu: Int, writesWhole: Bool) {
        self.device = device
        self.mtu = mtu
        self.writesWhole = writesWhole
    }

    /// A `packet` frame's packet, from the peer `sender` (its index in `router`).
    mutating func write(_ packet: UnsafeRawBufferPointer, from sender: Int, router: PacketRouter, _ note: (Outcome) -> Void) {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: packet)
        guard let parsed = IPPacket(scratch) else { return note(.malformed) }
        guard router.mayWrite(source: parsed.source, from: sender) else { return note(.spoofedSource) }
        MSSClamp.clamp(&scratch, packet: parsed, mtu: mtu)
        note(Self.writePlain(scratch, to: device, header: plainHeader))
    }

    /// An `offloadPacket` frame: its virtio-net header, then the packet.
    mutating func writeOffloaded(_ frame: UnsafeRawBufferPointer, from sender: Int, router: PacketRouter,
                                 _ note: (Outcome) -> Void) {
        guard let header = VirtioNetHeader(frame) else { return note(.malformed) }
        let packet = UnsafeRawBufferPointer(rebasing: frame[VirtioNetHeader.size...])
        // Whole: the frame is already header ‖ packet, as the TUN takes it, so only the IP
        // header is copied for the source check, not up to 64 KiB behind it.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: writesWhole ? packet.prefix(IPPacket.maxHeaderBytes) : packet[...])
        guard let parsed = IPPacket(scratch, length: packet.count) else { return note(.malformed) }
        guard router.mayWrite(source: parsed.source, from: sender) else { return note(.spoofedSource) }
        if writesWhole { return note(device.write(frame) ? .writtenWhole : .writeFailed) }
        // Refused packets throw before any segment is written. (Locals: the closure must not
        // reach `self` while `segmentScratch` is being written.)
        let device = device, plainHeader = plainHeader
        do throws(GSOSegmenter.Failure) {
            try GSOSegmenter.forEachSegment(of: scratch, header: header, scratch: &segmentScratch) {
                note(Self.writePlain($0, to: device, header: plainHeader))
            }
        } catch {
            note(.malformed)
        }
    }

    /// A packet with complete checksums, after a plain virtio-net header when the TUN takes
    /// headers (the kernel checks the checksums itself).
    private static func writePlain(_ packet: [UInt8], to device: TunDevice, header plainHeader: [UInt8]) -> Outcome {
        let written = device.vnetHeader
            ? plainHeader.withUnsafeBytes { header in packet.withUnsafeBytes { device.write(header: header, packet: $0) } }
            : packet.withUnsafeBytes { device.write($0) }
        return written ? .written : .writeFailed
    }
}
