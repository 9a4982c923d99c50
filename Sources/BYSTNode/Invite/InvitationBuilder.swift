import BYSTProto

/// What `byst invite` derives from the hub's config and its options: the hub's new
/// `[[peer]]` for the branch and the invitation for it (docs/OPERATIONS.md, "Invitations").
///
/// Deny by default: the peer gets `allow_targets` and registry `ports` only if asked for.
/// With TUN addresses for the branch, the hub routes each one's host prefix (and any
/// `allowedIPs`) to the branch, and the branch routes the hub's tunnel subnets of the same
/// families (and any `routes`) to the hub.
struct InvitationBuilder {
    var branchName: String
    /// The branch's name for the hub; nil: the hub's `[node] name`.
    var hubName: String?
    var endpoints: [Endpoint]
    var links = PeerConfig.defaultLinks
    /// `--address` as written: `10.0.0.2/24`, or `10.0.0.2` to take the length of the hub's
    /// tunnel subnet that holds it.
    var addresses: [String] = []
    /// Prefixes behind the branch (its LAN), routed to it by the hub.
    var allowedIPs: [IPPrefix] = []
    /// Prefixes behind the hub, routed to it by the branch.
    var routes: [IPPrefix] = []
    var allowTargets: [TargetRule] = []
    var ports: [String] = []

    struct Refusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    struct Plan {
        /// The hub's new `[[peer]]` (its key is named like the peer).
        let peer: PeerConfig
        let hubName: String
        let branchAddresses: [IPPrefix]
        let branchRoutes: [IPPrefix]
        let endpoints: [Endpoint]
        let links: Int

        /// The invitation carrying `key`; refused if `byst join` would refuse it.
        func invitation(key: PreSharedKey) throws(Refusal) -> Invitation {
            let invitation = Invitation(key: key, hubName: hubName, branchName: peer.name, endpoints: endpoints, links: links,
                                        addresses: branchAddresses, routes: branchRoutes)
            if let problem = invitation.invariantViolation { throw Refusal("cannot invite: \(problem)".escapingControlCharacters()) }
            return invitation
        }
    }

    func plan(hub: NodeConfig) throws(Refusal) -> Plan {
        let hubName = self.hubName ?? hub.name
        guard KeyStore.isValidName(hubName) else {
            throw Refusal("the hub's name \(hubName.configQuoted) cannot name a peer on the branch (1-63 letters, digits, '.', '_' or '-'): "
                + "give one with --hub-name")
        }
        // A hello carrying our own node name is taken for a link turned back to us (reflection).
        guard branchName != hub.name else { throw Refusal("the branch cannot have the hub's own name \(hub.name.configQuoted)") }
        guard !endpoints.isEmpty else {
            throw Refusal("give the address the branch dials: --endpoint byst://HOST:PORT (or http(s)://…), one of this hub's listeners")
        }
        if let port = endpoints.first(where: { $0.portName != nil }) {
            throw Refusal("--endpoint \(port.description.configQuoted): invitations carry byst://, http:// and https:// endpoints, "
                + "not port:NAME (the branch would need a registry)")
        }
        let hubTunnel = hub.tun?.addresses ?? []
        if !addresses.isEmpty, hubTunnel.isEmpty {
            throw Refusal("the hub has no [tun]: a TUN address for the branch would reach nothing (add [tun] to the hub's config, or leave out --address)")
        }
        guard !addresses.isEmpty || routes.isEmpty else { throw Refusal("--routes needs --address: without a TUN address the branch routes nothing") }
        let branchAddresses = try addresses.map { (text: String) throws(Refusal) -> IPPrefix in try Self.address(text, in: hubTunnel) }
        for address in branchAddresses where hubTunnel.contains(where: { $0.address == address.address }) {
            throw Refusal("--address \(address.addressDescription) is the hub's own tunnel address")
        }
        let hostPrefixes = branchAddresses.compactMap { IPPrefix(address: $0.address, length: $0.address.count * 8) }
        var peer = PeerConfig(name: branchName, key: branchName, allowTargets: allowTargets, allowedIPs: hostPrefixes + allowedIPs)
        peer.ports = ports
        let families = Set(branchAddresses.map(\.isIPv6))
        let hubSubnets = hubTunnel.filter { families.contains($0.isIPv6) }.map(\.network)
        var branchRoutes: [IPPrefix] = []
        for prefix in hubSubnets + routes where !branchRoutes.contains(prefix) { branchRoutes.append(prefix) }
        return Plan(peer: peer, hubName: hubName, branchAddresses: branchAddresses, branchRoutes: branchRoutes,
                    endpoints: endpoints, links: links)
    }

    /// `10.0.0.2/24` as written; `10.0.0.2` with the length of the hub's tunnel subnet holding it.
    static func address(_ text: String, in hubTunnel: [IPPrefix]) throws(Refusal) -> IPPrefix {
        let expected = "--address must be the branch's tunnel address, like 10.0.0.2/24 or 10.0.0.2 (in the hub's tunnel subnet), got \(text.configQuoted)"
        if text.contains("/") {
            guard case .success(let prefix) = IPPrefix.parseInterfaceAddress(text) else { throw Refusal(expected.escapingControlCharacters()) }
            return prefix
        }
        guard case .success(let host) = IPPrefix.parseAllowedIP(text) else { throw Refusal(expected.escapingControlCharacters()) }
        guard let subnet = hubTunnel.first(where: { $0.isIPv6 == host.isIPv6 && $0.network.contains(host.address) }),
              let prefix = IPPrefix(address: host.address, length: subnet.length)
        else {
            let subnets = hubTunnel.map(\.network.description).joined(separator: ", ")
            throw Refusal("--address \(text): not in the hub's tunnel subnets (\(subnets)); give its length, like \(text)/24".escapingControlCharacters())
        }
        return prefix
    }
}
