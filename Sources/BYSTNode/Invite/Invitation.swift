import BYSTProto

/// Everything a branch needs to join a hub, made by `byst invite` on the hub and read by
/// `byst join` on the branch (docs/OPERATIONS.md, "Invitations"; the line's format is
/// PROTOCOL.md §2.4). It holds the PSK: it is as secret as the key itself.
///
/// **Invariants** (for values from `Invitation.decode` and from `InvitationBuilder`)
/// - `hubName` and `branchName` match `KeyStore.isValidName`, and differ.
/// - `endpoints` is non-empty and holds no `port:NAME` endpoint (a branch dialling an HA
///   port needs a registry an invitation does not describe).
/// - `links` is within `PeerConfig.linksRange`.
/// - `addresses` are the branch's `[tun]` addresses (host bits kept, lengths ≥ 1); `routes`
///   (the branch's `allowed_ips` for the hub, network form) are empty when `addresses` are.
public struct Invitation: Sendable {
    public var key: PreSharedKey
    /// The branch's name for the hub: its `[[peer]]` and key name.
    public var hubName: String
    /// The branch's `[node] name`, and the hub's `[[peer]]` and key name for it.
    public var branchName: String
    /// Where the branch dials the hub, in order of preference.
    public var endpoints: [Endpoint]
    /// Parallel links the branch opens.
    public var links: Int
    /// The branch's TUN addresses; none: the branch gets no `[tun]`.
    public var addresses: [IPPrefix]
    /// What the branch routes to the hub: the hub's tunnel subnets and any prefixes behind it.
    public var routes: [IPPrefix]

    public init(key: PreSharedKey, hubName: String, branchName: String, endpoints: [Endpoint],
                links: Int = PeerConfig.defaultLinks, addresses: [IPPrefix] = [], routes: [IPPrefix] = []) {
        self.key = key
        self.hubName = hubName
        self.branchName = branchName
        self.endpoints = endpoints
        self.links = links
        self.addresses = addresses
        self.routes = routes
    }
}
