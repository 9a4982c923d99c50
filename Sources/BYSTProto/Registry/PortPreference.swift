// Active/active HA (docs/OPERATIONS.md "High availability", docs/PROTOCOL.md §7): a gateway
// serving several ports prefers the first one it lists. Sans-IO, one per port of a gateway.
//
// The preferred gateway of port P announces itself by holding the registry port
// `P.want` (`wantPort(for:)`) as long as it runs. A gateway for which P is *not* preferred
//   - claims P only while nobody holds `P.want` (the preferred gateway is gone): when P
//     comes free while it is wanted, the preferred gateway takes it;
//   - hands P back (steps down, then releases it at the registry) once `P.want` has been
//     held without a break for `hold` — a preferred gateway that comes and goes quicker
//     than that moves nothing (hysteresis).
// Stepping down before the release keeps the registry's rule: at most one active gateway.
public struct PortPreference: Sendable {
    /// The registry port by which P's preferred gateway says it is there.
    public static func wantPort(for port: String) -> String { port + wantSuffix }
    public static let wantSuffix = ".want"
    /// How long `P.want` must be held before a non-preferred owner hands P back.
    public static let defaultHold: Duration = .seconds(3)

    /// This gateway lists the port first: it claims it at once and never hands it back.
    public let preferred: Bool
    public let hold: Nanoseconds
    /// Since when `P.want` has been held without a break (nil: free, or not known yet).
    public private(set) var wantedSince: Nanoseconds?

    public init(preferred: Bool, hold: Duration = PortPreference.defaultHold) {
        self.preferred = preferred
        self.hold = hold.nanoseconds
    }

    /// `P.want`'s owner changed: `held` when someone holds it now.
    public mutating func wantChanged(held: Bool, now: Nanoseconds) {
        if !held {
            wantedSince = nil
        } else if wantedSince == nil {
            wantedSince = now
        }
    }

    /// Whether we may ask the registry for P now.
    public var mayClaim: Bool { preferred || wantedSince == nil }

    /// Whether an owner of P should hand it back now.
    public func shouldHandBack(now: Nanoseconds) -> Bool {
        guard !preferred, let wantedSince else { return false }
        return now >= wantedSince + hold
    }

    /// When `shouldHandBack` turns true (nil: not while nothing changes).
    public var handBackAt: Nanoseconds? {
        guard !preferred, let wantedSince else { return nil }
        return wantedSince + hold
    }
}
