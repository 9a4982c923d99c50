import Foundation

/// How `byst status` writes ages, sizes and rates for people (plain functions, unit-tested).
enum StatusFormat {
    /// "42 seconds", "3 minutes, 5 seconds", "2 hours, 1 minute", "4 days, 3 hours": the two
    /// largest units, as `wg show` does; negative or not-a-number reads as 0.
    static func duration(seconds: Double) -> String {
        let total = seconds.isFinite && seconds > 0 ? Int(min(seconds, 1e12)) : 0
        let units: [(name: String, seconds: Int)] = [("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)]
        var parts: [String] = []
        var rest = total
        for unit in units where parts.count < 2 {
            let count = rest / unit.seconds
            rest %= unit.seconds
            // Once the largest unit is written, the next one is written even when 0 only if
            // something smaller follows; "2 minutes" rather than "2 minutes, 0 seconds".
            if count > 0 { parts.append(Self.count(count, unit.name)) } else if !parts.isEmpty { break }
        }
        return parts.isEmpty ? "0 seconds" : parts.joined(separator: ", ")
    }

    /// "1 stream", "4 streams".
    static func count(_ value: some BinaryInteger, _ noun: String) -> String {
        "\(value) \(noun)\(value == 1 ? "" : "s")"
    }

    /// "12 seconds ago"; under a second "just now".
    static func ago(seconds: Double) -> String {
        seconds.isFinite && seconds >= 1 ? duration(seconds: seconds) + " ago" : "just now"
    }

    /// "512 B", "1.50 KiB", "3.21 MiB", "1.02 GiB", "2.00 TiB" (1024-based, two decimals).
    static func bytes(_ count: UInt64) -> String {
        guard count >= 1024 else { return "\(count) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.2f %@", value, units[unit])
    }

    /// "1.21 MiB/s (10.2 Mbit/s)": bytes per second, and bits per second in decimal units as
    /// iperf3 and link speeds are written.
    static func rate(bytesPerSecond: Double) -> String {
        let perSecond = bytesPerSecond.isFinite && bytesPerSecond > 0 ? bytesPerSecond : 0
        let bits = perSecond * 8
        let decimal: String
        switch bits {
        case ..<1e3: decimal = String(format: "%.0f bit/s", bits)
        case ..<1e6: decimal = String(format: "%.1f kbit/s", bits / 1e3)
        case ..<1e9: decimal = String(format: "%.1f Mbit/s", bits / 1e6)
        default: decimal = String(format: "%.2f Gbit/s", bits / 1e9)
        }
        return "\(bytes(UInt64(min(perSecond, 1e18))))/s (\(decimal))"
    }

    /// "0.21 ms" (below 10 ms two decimals, then one).
    static func milliseconds(_ value: Double) -> String {
        String(format: value < 10 ? "%.2f ms" : "%.1f ms", value)
    }
}
