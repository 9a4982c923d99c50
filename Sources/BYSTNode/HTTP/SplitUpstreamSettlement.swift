/// Whether a connection that carries split-mode POSTs (PROTOCOL.md §6.3) still counts as an
/// unfinished handshake. Until a link it fed has completed its handshake it is a stranger's
/// connection: it stays in `pending_handshakes` and is closed at the handshake deadline, so
/// feeding tokens that never pair cannot keep it open (HTTPServerFrontEnd applies this).
///
/// **Invariants**: at most `rememberedTokens` tokens are kept, none once settled.
struct SplitUpstreamSettlement {
    /// A client's connection feeds one link; through a proxy, a few links' POSTs may share one.
    static let rememberedTokens = 4
    private(set) var isSettled = false
    private var tokens: [String] = []

    /// The connection carried a POST for `token`.
    mutating func fed(_ token: String) {
        guard !isSettled, !tokens.contains(token) else { return }
        if tokens.count == Self.rememberedTokens { tokens.removeFirst() }
        tokens.append(token)
    }

    /// Settles the connection if a link it fed is authenticated; true if this settled it.
    mutating func settle(authenticated: (String) -> Bool) -> Bool {
        guard !isSettled, tokens.contains(where: authenticated) else { return false }
        isSettled = true
        tokens = []
        return true
    }
}
