import BYSTProto

/// The config file `byst join` writes for the branch from an invitation: `[node]`, `[tun]`
/// when the invitation gives the branch addresses, and the hub as its one `[[peer]]`, which
/// it dials. Keys at their defaults are left out, as `byst peer add` leaves them out.
enum BranchConfigText {
    /// `keyStore` and `controlSocket` are written only when given (else the defaults apply).
    static func render(_ invitation: Invitation, keyStore: String?, controlSocket: String?) -> String {
        var lines = [
            "# BYST node \(invitation.branchName.configQuoted), written by `byst join` from an invitation of \(invitation.hubName.configQuoted).",
            "# See docs/OPERATIONS.md, \"Configuration\", for every key.",
            "",
            "[node]",
            "name = \(invitation.branchName.tomlQuoted)",
        ]
        if let keyStore { lines.append("key_store = \(keyStore.tomlQuoted)") }
        if let controlSocket { lines.append("control_socket = \(controlSocket.tomlQuoted)") }
        if !invitation.addresses.isEmpty {
            lines += ["", "[tun]", "address = \(list(invitation.addresses))"]
        }
        // No allow_targets: the hub may not make us connect anywhere (deny by default).
        let hub = PeerConfig(name: invitation.hubName, key: invitation.hubName, endpoint: invitation.endpoints.first,
                             links: invitation.links, allowedIPs: invitation.routes)
        lines += ["", "# The hub: we dial it. It may not make us connect anywhere (no allow_targets)."]
        lines += ConfigEditor.render(hub)
        let others = invitation.endpoints.dropFirst()
        if !others.isEmpty {
            lines.append("# The hub's other endpoints (put one in endpoint if the one above cannot be reached):")
            lines += others.map { "#   \($0.description.escapingControlCharacters())" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func list(_ prefixes: [IPPrefix]) -> String {
        "[" + prefixes.map(\.description.tomlQuoted).joined(separator: ", ") + "]"
    }
}
