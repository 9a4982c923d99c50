import BYSTProto
import Glibc
import NIOCore

/// The two clocks the runtime feeds the sans-IO core.
enum Clocks {
    /// Monotonic nanoseconds (NIO's uptime clock): timers, RTT, keepalives.
    static func monotonic() -> Nanoseconds { NIODeadline.now().uptimeNanoseconds }

    /// Wall-clock nanoseconds since the Unix epoch: handshake timestamps only.
    static func wall() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
