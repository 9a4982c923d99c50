import NIOCore

/// The accepting side of a link handshake (PROTOCOL.md §3), sans-IO.
///
///     receive() ─▶ header: magic, version, suite, key id ─▶ message 1 complete?
///               ─▶ decrypt under that PSK ─▶ hello parses ─▶ timestamp in window, not replayed
///               ─▶ message 2 appended to `out`                        state: established
///
/// Cheap rejections come first: nothing but a table lookup happens before the key id
/// matches a configured PSK, and the only DH is spent writing message 2. An unknown key id
/// is refused only once message 1 is complete, as a wrong PSK is: the reads, the deadline
/// and the close look the same, so a prober cannot tell which key ids we hold.
public struct LinkResponder {
    enum State {
        /// Waiting for (the rest of) message 1.
        case awaitingInitiation
        /// Message 2 written; keys handed out.
        case established
        /// A previous error; the link must be closed.
        case failed
    }

    /// What this node says about itself in message 2.
    public struct Local: Sendable {
        public var nodeName: String
        public var features: LinkFeatures
        public var limits: RecordLimits
        public var suites: Set<AEADAlgorithm>
        /// The transport's binding (split-mode link token), mixed into the prologue.
        public var transportBinding: [UInt8]

        public init(nodeName: String, features: LinkFeatures = [], limits: RecordLimits = .init(),
                    suites: Set<AEADAlgorithm> = Set(AEADAlgorithm.allCases), transportBinding: [UInt8] = []) {
            self.nodeName = nodeName
            self.features = features
            self.limits = limits
            self.suites = suites
            self.transportBinding = transportBinding
        }
    }

    private var state: State = .awaitingInitiation
    private let local: Local
    private let testingOnlyEphemeral: X25519.PrivateKey?

    public init(local: Local) { self.init(local: local, testingOnlyEphemeral: nil) }

    init(local: Local, testingOnlyEphemeral: X25519.PrivateKey?) {
        self.local = local
        self.testingOnlyEphemeral = testingOnlyEphemeral
    }

    /// Feeds inbound bytes. When message 1 is complete and valid, appends message 2 to
    /// `out` and returns the keys; message 1's bytes are consumed from `buffer`.
    /// - Parameters:
    ///   - now: wall clock, nanoseconds since the Unix epoch.
    ///   - keys: the configured PSKs by key id.
    public mutating func receive(
        _ buffer: inout ByteBuffer, now: UInt64, keys: (KeyID) -> PreSharedKey?,
        replayFilter: inout HandshakeReplayFilter, into out: inout ByteBuffer
    ) throws(HandshakeError) -> LinkEstablished? {
        guard case .awaitingInitiation = state else {
            state = .failed
            throw .unexpectedMessage
        }
        do throws(HandshakeError) {
            return try process(&buffer, now: now, keys: keys, replayFilter: &replayFilter, into: &out)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func process(
        _ buffer: inout ByteBuffer, now: UInt64, keys: (KeyID) -> PreSharedKey?,
        replayFilter: inout HandshakeReplayFilter, into out: inout ByteBuffer
    ) throws(HandshakeError) -> LinkEstablished? {
        // Check each header field as soon as its bytes are here, so junk is refused early.
        let available = buffer.readableBytesView
        for (index, byte) in LinkWire.magic.enumerated() where index < available.count {
            guard available[available.startIndex + index] == byte else { throw .badMagic }
        }
        guard available.count >= LinkWire.initiationHeaderSize else { return nil }
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: LinkWire.initiationHeaderSize) else { return nil }
        guard header[4] == LinkWire.version else { throw .unsupportedVersion(header[4]) }
        guard let suite = AEADAlgorithm(rawValue: header[5]), local.suites.contains(suite) else {
            throw .unsupportedSuite(header[5])
        }
        guard let keyID = KeyID(bytes: Array(header[6..<14])) else { throw .unexpectedMessage }
        guard let message = try LinkWire.lengthPrefixed(in: buffer, at: LinkWire.initiationHeaderSize) else {
            return nil
        }
        guard let psk = keys(keyID) else { throw .unknownKeyID(keyID) }

        var noise = try mapNoiseError { () throws(NoiseError) in
            try HandshakeState(
                protocol: LinkWire.noiseProtocol(for: suite), initiator: false, prologue: LinkWire.prologue(header: header, binding: local.transportBinding),
                localStatic: nil, remoteStatic: nil, psks: [psk.secret], testingOnlyEphemeral: testingOnlyEphemeral)
        }
        let peer = try LinkHello(decoding: mapNoiseError { () throws(NoiseError) in try noise.readMessage(message) })
        // Our own message 1, reflected back to us (we dial and accept with this PSK).
        guard peer.nodeName != local.nodeName else { throw .reflected }
        try replayFilter.admit(keyID: keyID, timestamp: peer.timestamp, ephemeral: Array(message.prefix(X25519.keySize)), now: now)
        let hello = LinkHello(
            timestamp: now, sessionID: peer.sessionID, linkIndex: peer.linkIndex, features: local.features,
            maxRecordPayload: UInt32(local.limits.maxPayload), nodeName: local.nodeName)
        let reply = try mapNoiseError { () throws(NoiseError) in try noise.writeMessage(payload: hello.encoded()) }
        let established = try LinkEstablished(
            isInitiator: false, state: noise, suite: suite, keyID: keyID, local: hello, peer: peer, limits: local.limits)
        buffer.moveReaderIndex(forwardBy: LinkWire.initiationHeaderSize + LinkWire.lengthSize + message.count)
        out.writeInteger(UInt16(reply.count))
        out.writeBytes(reply)
        state = .established
        return established
    }

    /// The stream ended: `truncated` unless the handshake completed.
    public func finish() throws(HandshakeError) {
        if case .established = state { return }
        throw .truncated
    }
}
