import BYSTProto

/// The TUN's packet counters (`byst status` → `tun.counters`, docs/OPERATIONS.md "Status"):
/// kept by the data plane, which reads and writes the TUN, plus the event loop's drops of
/// packets it was handed for peers whose links it holds.
struct TunCounters: Codable, Sendable {
    var packets_from_tun: UInt64 = 0
    var packets_to_tun: UInt64 = 0
    var dropped_no_route: UInt64 = 0
    var dropped_no_session: UInt64 = 0
    var dropped_spoofed_source: UInt64 = 0
    var dropped_malformed: UInt64 = 0
    var dropped_tun_write: UInt64 = 0
    /// Packets the kernel sent into the TUN that only mean something on one link
    /// (ICMP redirects, link-scoped multicast): not for any peer.
    var dropped_link_scoped: UInt64 = 0
    /// GSO super-packets from the TUN sent whole (`offloadPacket` frames), and those cut
    /// into packets here because the peer's TUN cannot take them.
    var super_packets_sent_whole: UInt64 = 0
    var super_packets_segmented: UInt64 = 0
    /// `offloadPacket` frames from peers written to the TUN whole.
    var super_packets_received: UInt64 = 0
    /// Packets read on a TUN queue whose plane has none of the peer's links, sent on by the
    /// plane that has (`[tun] queues` > 1; rare once the kernel steers a flow to the queue
    /// its replies are written on).
    var packets_to_other_planes: UInt64 = 0
    /// Packet striping (PROTOCOL.md §5.4): packets sent numbered over a peer's links; numbered
    /// packets from peers held until the gap before them filled, arrived after their gap was
    /// given up (written at once), and the sequence numbers given up (lost, or later than the
    /// reorder time), and the gaps given up because the holding was full rather than timed out.
    var packets_striped: UInt64 = 0
    var packets_reordered: UInt64 = 0
    var packets_late: UInt64 = 0
    var sequence_gaps_skipped: UInt64 = 0
    var reorder_overflows: UInt64 = 0

    mutating func drop(_ drop: PacketRouter.Drop) {
        switch drop {
        case .malformed: dropped_malformed += 1
        case .linkScoped: dropped_link_scoped += 1
        case .noRoute: dropped_no_route += 1
        case .noSession: dropped_no_session += 1
        }
    }

    /// Counts a TUN write's outcome; whether the packet reached the TUN.
    @discardableResult
    mutating func count(_ outcome: TunPacketWriter.Outcome) -> Bool {
        switch outcome {
        case .written: packets_to_tun += 1
        case .writtenWhole: super_packets_received += 1
        case .malformed: dropped_malformed += 1
        case .spoofedSource: dropped_spoofed_source += 1
        case .writeFailed: dropped_tun_write += 1
        }
        return outcome == .written || outcome == .writtenWhole
    }

    /// The drops by metric reason, for folding into `byst_packets_dropped_total`.
    var drops: [(PacketDropReason, UInt64)] {
        [(.noRoute, dropped_no_route), (.noSession, dropped_no_session), (.spoofedSource, dropped_spoofed_source),
         (.malformed, dropped_malformed), (.tunWrite, dropped_tun_write), (.linkScoped, dropped_link_scoped)]
    }

    func adding(_ other: TunCounters) -> TunCounters {
        TunCounters(
            packets_from_tun: packets_from_tun + other.packets_from_tun, packets_to_tun: packets_to_tun + other.packets_to_tun,
            dropped_no_route: dropped_no_route + other.dropped_no_route,
            dropped_no_session: dropped_no_session + other.dropped_no_session,
            dropped_spoofed_source: dropped_spoofed_source + other.dropped_spoofed_source,
            dropped_malformed: dropped_malformed + other.dropped_malformed,
            dropped_tun_write: dropped_tun_write + other.dropped_tun_write,
            dropped_link_scoped: dropped_link_scoped + other.dropped_link_scoped,
            super_packets_sent_whole: super_packets_sent_whole + other.super_packets_sent_whole,
            super_packets_segmented: super_packets_segmented + other.super_packets_segmented,
            super_packets_received: super_packets_received + other.super_packets_received,
            packets_to_other_planes: packets_to_other_planes + other.packets_to_other_planes,
            packets_striped: packets_striped + other.packets_striped,
            packets_reordered: packets_reordered + other.packets_reordered,
            packets_late: packets_late + other.packets_late,
            sequence_gaps_skipped: sequence_gaps_skipped + other.sequence_gaps_skipped,
            reorder_overflows: reorder_overflows + other.reorder_overflows)
    }
}
