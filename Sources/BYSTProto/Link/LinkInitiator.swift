import NIOCore

/// The dialing side of a link handshake (PROTOCOL.md §3), sans-IO.
///
///     start()    ─▶ message 1 appended to `out`             state: sentInitiation
///     receive()  ─▶ waits for message 2, verifies it        state: established
///
/// After `established`, the initiator must send its first record at once (it may be
/// empty): the responder commits the link only when that record verifies.
public struct LinkInitiator {
    enum State {
        /// Nothing sent yet.
        case idle
        /// Message 1 sent; waiting for message 2.
        case sentInitiation(HandshakeState)
        /// Message 2 verified; keys handed out.
        case established
        /// A previous error; the link must be closed.
        case failed
    }

    private var state: State = .idle
    private let psk: PreSharedKey
    private let suite: AEADAlgorithm
    private let hello: LinkHello
    private let limits: RecordLimits
    private let transportBinding: [UInt8]
    private let testingOnlyEphemeral: X25519.PrivateKey?

    /// `hello.timestamp` must be the current wall-clock time; `hello.maxRecordPayload`
    /// should equal `limits.maxPayload`. `transportBinding` ties the handshake to the
    /// transport that carries it (the split-mode link token, PROTOCOL.md §6.3); the
    /// responder must use the same bytes.
    public init(psk: PreSharedKey, suite: AEADAlgorithm = .aes256gcm, hello: LinkHello, limits: RecordLimits = .init(),
                transportBinding: [UInt8] = []) {
        self.init(psk: psk, suite: suite, hello: hello, limits: limits, transportBinding: transportBinding,
                  testingOnlyEphemeral: nil)
    }

    init(psk: PreSharedKey, suite: AEADAlgorithm, hello: LinkHello, limits: RecordLimits, transportBinding: [UInt8] = [],
         testingOnlyEphemeral: X25519.PrivateKey?) {
        self.psk = psk
        self.suite = suite
        self.hello = hello
        self.limits = limits
        self.transportBinding = transportBinding
        self.testingOnlyEphemeral = testingOnlyEphemeral
    }

    /// The key this initiator handshakes with.
    var keyID: KeyID { psk.id }

    /// Appends message 1 (PROTOCOL.md §3.2) to `out`.
    public mutating func start(into out: inout ByteBuffer) throws(HandshakeError) {
        guard case .idle = state else { throw .unexpectedMessage }
        var header = LinkWire.magic
        header.append(LinkWire.version)
        header.append(suite.rawValue)
        header += psk.id.bytes
        do throws(NoiseError) {
            var noise = try HandshakeState(
                protocol: LinkWire.noiseProtocol(for: suite), initiator: true, prologue: LinkWire.prologue(header: header, binding: transportBinding),
                localStatic: nil, remoteStatic: nil, psks: [psk.secret], testingOnlyEphemeral: testingOnlyEphemeral)
            let message = try noise.writeMessage(payload: hello.encoded())
            out.writeBytes(header)
            out.writeInteger(UInt16(message.count))
            out.writeBytes(message)
            state = .sentInitiation(noise)
        } catch {
            state = .failed
            throw HandshakeError(error)
        }
    }

    /// Consumes message 2 from `buffer` once complete; bytes after it (records) stay in
    /// `buffer`. Returns nil while more bytes are needed.
    public mutating func receive(_ buffer: inout ByteBuffer) throws(HandshakeError) -> LinkEstablished? {
        guard case .sentInitiation(var noise) = state else {
            state = .failed
            throw .unexpectedMessage
        }
        do throws(HandshakeError) {
            guard let message = try LinkWire.lengthPrefixed(in: buffer, at: 0) else { return nil }
            let payload = try mapNoiseError { () throws(NoiseError) in try noise.readMessage(message) }
            let peer = try LinkHello(decoding: payload)
            guard peer.sessionID == hello.sessionID, peer.linkIndex == hello.linkIndex else { throw .sessionMismatch }
            // Our own listener answered (the connection was turned back to us).
            guard peer.nodeName != hello.nodeName else { throw .reflected }
            let established = try LinkEstablished(
                isInitiator: true, state: noise, suite: suite, keyID: psk.id, local: hello, peer: peer, limits: limits)
            buffer.moveReaderIndex(forwardBy: LinkWire.lengthSize + message.count)
            state = .established
            return established
        } catch {
            state = .failed
            throw error
        }
    }

    /// The stream ended: `truncated` if it ended before message 2 was complete.
    public func finish() throws(HandshakeError) {
        if case .established = state { return }
        throw .truncated
    }
}
