import BYSTProto
import Glibc
import Tun

extension Preflight {
    /// `[tun]`: the name is free (or an idle persistent TUN), the driver is there, we may
    /// create interfaces, and the kernel would accept a route for every `allowed_ips`.
    static func tunProblems(_ config: NodeConfig, _ lines: ConfigLines) -> [PreflightProblem] {
        guard let tun = config.tun else { return [] }
        var problems: [PreflightProblem] = []
        let nameLocation = lines.location("name", table: "tun")
        switch InterfaceProbe.state(of: tun.name) {
        case .free, .idlePersistentTun: break
        case .tunInUse:
            problems.append(PreflightProblem(location: nameLocation, message:
                "[tun] name \(tun.name.configQuoted): a TUN interface of that name is already up, held by another process (another byst node?): give this node a different [tun] name"))
        case .otherKind:
            problems.append(PreflightProblem(location: nameLocation, message:
                "[tun] name \(tun.name.configQuoted): an interface of that name exists and is not a TUN: set a different [tun] name"))
        }
        if access("/dev/net/tun", F_OK) != 0 {
            problems.append(PreflightProblem(location: nameLocation, message: TunDevice.Failure.noTunDriver.description))
        }
        if !hasNetAdmin() {
            problems.append(PreflightProblem(location: nameLocation, message:
                "[tun] needs CAP_NET_ADMIN to create \(tun.name) and set its addresses and routes: run as root or under byst@.service"))
        }
        problems += routeProblems(config, tun, lines)
        return problems
    }

    /// Prefixes whose route the kernel already has (`add route … already exists` at start).
    static func routeProblems(_ config: NodeConfig, _ tun: TunConfig, _ lines: ConfigLines) -> [PreflightProblem] {
        let prefixes = config.peers.flatMap(\.allowedIPs)
        guard !prefixes.isEmpty else { return [] }
        let routes: [KernelRoute]
        do throws(NetlinkSocket.Failure) { routes = try RouteTable.read() } catch {
            return [PreflightProblem(location: nil, message: "cannot read the kernel's routes to check allowed_ips: \(error)", severity: .warning)]
        }
        return routeConflicts(config, tun, routes: routes, lines)
    }

    /// The conflicts of the peers' `allowed_ips` with `routes` (the TUN's own subnets are
    /// not routed by us, as `InterfaceConfigurator.updateRoutes` skips them).
    static func routeConflicts(_ config: NodeConfig, _ tun: TunConfig, routes: [KernelRoute], _ lines: ConfigLines) -> [PreflightProblem] {
        let connected = Set(tun.addresses.map(\.network))
        // Indexed once: a hub's 10,000 prefixes against a gateway's full table stay O(P + R).
        var conflicting: [IPPrefix: KernelRoute] = [:]
        for route in routes where RouteTable.refusesAdding(over: route) && conflicting[route.destination.network] == nil {
            conflicting[route.destination.network] = route
        }
        var problems: [PreflightProblem] = []
        for (index, peer) in config.peers.enumerated() {
            for prefix in peer.allowedIPs where !connected.contains(prefix.network) {
                guard let existing = conflicting[prefix.network] else { continue }
                let when = config.ha == nil ? "byst up would fail with `add route \(prefix.network) via \(tun.name): already exists`"
                    : "routes cannot be installed when this gateway becomes active"
                problems.append(PreflightProblem(
                    location: lines.location("allowed_ips", table: "peer", index: index, value: prefix.description),
                    message: "[[peer]] \(peer.name.configQuoted): allowed_ips \(prefix.description.configQuoted) collides with the existing route \(existing) (\(when)): remove that route or narrow allowed_ips",
                    severity: config.ha == nil ? .error : .warning))
            }
        }
        return problems
    }

    /// CAP_NET_ADMIN (bit 12) in the effective set (/proc/self/status `CapEff`).
    static func hasNetAdmin() -> Bool {
        guard let status = InterfaceProbe.readSmallFile("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }, radix: 16) else { return geteuid() == 0 }
        return mask & (1 << 12) != 0
    }
}
