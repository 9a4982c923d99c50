import BYSTProto

/// Auto HTTP mode behind a proxy that holds small writes (HeldWritesCheck, PROTOCOL.md §6.2):
/// duplex works there, slowly, so auto settles on it first; its links' keepalive RTTs then
/// tell whether one WebSocket link on the same path is worth a trial, and the trial's RTTs
/// whether the peer's links move to WebSocket. The links move by recycling (PROTOCOL.md
/// §5.6): nothing in flight is lost and no link fails.
extension PeerRuntime {
    /// A keepalive RTT sample of a dialed HTTP link in `mode` whose TCP connect took `connectTime`.
    func httpRTTMeasured(_ rtt: Nanoseconds, mode: HTTPMode, connectTime: Nanoseconds) {
        guard config.http.mode == .auto, learnedHTTPMode == .duplex else { return }
        let verdict: HeldWritesCheck.Verdict?
        switch mode {
        case .duplex: verdict = heldWrites.primarySample(rtt, connectTime: connectTime)
        case .websocket: verdict = heldWrites.alternativeSample(rtt)
        case .split, .auto: return
        }
        switch verdict {
        case nil:
            return
        case .tryAlternative(let primaryRTT):
            node.logger.debug("peer '\(config.name)': duplex keepalive RTT \(Self.milliseconds(primaryRTT)) ms, \(Self.milliseconds(connectTime)) ms to connect: trying websocket on one link")
            let reason = "trying HTTP websocket mode (duplex keepalive RTT \(Self.milliseconds(primaryRTT)) ms)"
            guard slots.contains(where: { $0.startReplacement(reason: reason, mode: .websocket) }) else {
                return heldWritesTrialEnded(cause: "no link free to replace")
            }
        case .useAlternative(let primaryRTT, let alternativeRTT):
            learnedHTTPMode = .websocket
            node.logger.info("peer '\(config.name)': HTTP duplex through this path holds small writes (keepalive RTT \(Self.milliseconds(primaryRTT)) ms, \(Self.milliseconds(alternativeRTT)) ms over websocket); using websocket")
            for slot in slots { slot.moveToDialMode(reason: "HTTP websocket mode (duplex holds small writes)") }
        case .keepPrimary(let primaryRTT, let alternativeRTT):
            node.logger.info("peer '\(config.name)': HTTP duplex keepalive RTT \(Self.milliseconds(primaryRTT)) ms, websocket \(alternativeRTT.map { "\(Self.milliseconds($0)) ms" } ?? "?"): keeping duplex")
            for slot in slots { slot.moveToDialMode(reason: "back to HTTP duplex mode") }
        }
    }

    /// A dialed HTTP link in `mode` that had come up has closed (`peerClosed`: the hub closed
    /// it and said why).
    func httpLinkEnded(_ mode: HTTPMode, peerClosed: LinkCloseReason?) {
        // The hub heard nothing on it for its dead-link timeout, while what it sent reached us.
        if mode == .duplex, peerClosed == .deadLink { return duplexUploadStalled() }
        guard heldWrites.isTrying, mode == .websocket, learnedHTTPMode == .duplex else { return }
        heldWritesTrialEnded(cause: "the link closed before its RTT was measured")
    }

    /// The WebSocket trial link failed or closed early: duplex stays.
    func heldWritesTrialEnded(cause: String) {
        guard heldWrites.alternativeFailed() != nil else { return }
        node.logger.info("peer '\(config.name)': HTTP websocket trial ended (\(cause)); keeping duplex")
    }

    private static func milliseconds(_ value: Nanoseconds) -> String {
        let tenths = value / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}
