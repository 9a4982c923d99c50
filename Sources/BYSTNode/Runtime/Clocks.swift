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

extension Array where Element == UInt8 {
    var hexString: String { map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
}
