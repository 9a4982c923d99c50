/// Which ports each client of the embedded registry may own — deny by default: a client
/// the registry's config gives no ports (`[[peer]] ports`) may query, watch and send, but
/// never register or relet a port, so a branch's key cannot take a gateway's port even while
/// it is free (after a registry restart, in a failover gap, after a clean stop).
public struct RegistryPermissions: Sendable, Equatable {
    private var ports: [RegistryClientID: Set<String>]
    /// Clients that may own any port: tests and fuzzing only (a config cannot say it).
    private var unrestricted: Set<RegistryClientID> = []

    public init(_ ports: [RegistryClientID: Set<String>] = [:]) {
        self.ports = ports.filter { !$0.value.isEmpty }
    }

    /// Permissions under which `clients` may own any port (tests and fuzzing).
    public static func unrestricted(_ clients: Set<RegistryClientID>) -> RegistryPermissions {
        var permissions = RegistryPermissions()
        permissions.unrestricted = clients
        return permissions
    }

    /// A client that may own port P may also own `P.want` (PortPreference: it says it is P's
    /// preferred gateway and is there).
    public func mayOwn(_ port: String, client: RegistryClientID) -> Bool {
        if unrestricted.contains(client) || ports[client]?.contains(port) == true { return true }
        guard port.hasSuffix(PortPreference.wantSuffix) else { return false }
        return ports[client]?.contains(String(port.dropLast(PortPreference.wantSuffix.count))) == true
    }
}
