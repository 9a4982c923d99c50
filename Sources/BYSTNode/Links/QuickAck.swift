import Glibc
import NIOCore

/// Has the kernel acknowledge what a link socket received at once, after each read.
///
/// While a connection carries data both ways Linux counts it as interactive and delays the
/// ACK of a small segment (40 ms on loopback, up to 200 ms on longer paths). An intermediary
/// that writes without TCP_NODELAY — tinyproxy relaying a CONNECT tunnel, for one — holds its
/// next small write until that ACK arrives (Nagle), so the acks and pongs it relays to us
/// arrive late (12 ms on average on loopback, `ss`), and a stream waits for its acks: through
/// tinyproxy CONNECT one stream moved 0.5–0.9 Gbit/s (tinyproxy itself passes ≈ 4 with curl;
/// docs/PERFORMANCE.md). `TCP_QUICKACK` sends the pending ACK
/// and leaves interactive mode; it does not stick (the kernel goes back to delaying), hence
/// once per read burst — one `setsockopt` — on every link socket, both ends (the hub cannot
/// tell whether a proxy stands in front of its peer).
enum QuickAck {
    static func request(fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func request(on channel: Channel) {
        try? channel.syncOptions?.setOption(option, value: 1)
    }

    private static let option = ChannelOptions.Types.SocketOption(level: IPPROTO_TCP, name: TCP_QUICKACK)
}
