// One link's whole protocol as a value (PROTOCOL.md §3, §4): fed socket bytes and the time,
// it answers with bytes to write, the handshake's outcome and opened record payloads. Its
// drivers (LinkHandler on the event loop, DataPlaneLink on the data plane) move bytes and
// own timers; every protocol decision is made here.
//
//   initiator: idle ─start▶ initiating ─message 2▶ established (first record sealed into output)
//   responder: responding ─message 1▶ awaitingFirstRecord (message 2 into output)
//              ─first record opens▶ established (that record comes right after `.established`)
//   established ─handOff▶ handedOff: opener, sealer and unread bytes moved to a new machine
//   a failure, `close`, `connectionClosed` ─▶ closed
//
// Hot paths allocate and copy nothing: records are opened in place in `inbound` and sealed in
// place in the caller's buffer (LinkMachine+Records.swift). Keep the machine where it is
// mutated (a `var` of its driver): a copy would share the buffer and the keys.
import NIOCore

public struct LinkMachine {
    enum State {
        /// Dialing, message 1 not sent yet.
        case idle(LinkInitiator)
        /// Message 1 sent, waiting for message 2.
        case initiating(LinkInitiator)
        /// Accepted: waiting for message 1.
        case responding(LinkResponder)
        /// Message 2 sent; the link counts only once the initiator's first record opens (PROTOCOL.md §3.5).
        case awaitingFirstRecord(Peer)
        /// Records flow.
        case established
        /// Established; the record layer now lives in the machine `handOff` returned.
        case handedOff
        case closed
    }

    // Internal, not private: LinkMachine+Records.swift works on them too.
    var state: State
    /// Socket bytes not yet consumed; records are opened in place here.
    var inbound = ByteBuffer()
    var opener: RecordOpener?
    var sealer: RecordSealer?
    var compressor = RecordCompressor.disabled
    let compressionLevel: Int32
    /// Our own largest record payload (what we advertised): the most a compressed one may inflate to.
    var maxPayload = RecordLimits.defaultMaxPayload
    /// Responder: the initiator's first record, opened; delivered right after `.established`.
    var firstRecord: RecordOpener.Opened?
    /// The largest record payload the peer accepts (from its hello).
    public private(set) var peerMaxPayload = RecordLimits.defaultMaxPayload
    /// Who the other end is, from the moment the link is established (kept after it closes).
    public private(set) var peer: Peer?
    /// The key this link dials with (initiator) or was authenticated by (responder).
    public private(set) var keyID: KeyID?
    public let isInitiator: Bool

    /// A dialed link; `start` writes message 1.
    public init(initiator: LinkInitiator, compressionLevel: Int32 = RecordCompressor.defaultLevel) {
        state = .idle(initiator)
        keyID = initiator.keyID
        isInitiator = true
        self.compressionLevel = compressionLevel
    }

    /// An accepted link, waiting for message 1.
    public init(responder: LinkResponder, compressionLevel: Int32 = RecordCompressor.defaultLevel) {
        state = .responding(responder)
        isInitiator = false
        self.compressionLevel = compressionLevel
    }

    /// Records flow here, or in the machine this one handed its record layer to.
    public var isEstablished: Bool {
        switch state {
        case .established, .handedOff: true
        default: false
        }
    }

    public var isClosed: Bool { if case .closed = state { true } else { false } }

    /// The initiator appends message 1 to `output` (PROTOCOL.md §3.1); a responder waits for it.
    public mutating func start(into output: inout ByteBuffer) throws(Failure) {
        guard case .idle(var initiator) = state else { return }
        do throws(HandshakeError) {
            try initiator.start(into: &output)
        } catch {
            close()
            throw .handshake(error)
        }
        state = .initiating(initiator)
    }

    /// Feeds what arrived since the last call. Returns the next event, or nil when more bytes
    /// are needed; call again until nil. Bytes to write (message 2, the initiator's first
    /// record) are appended to `output`: write them as soon as this returns.
    /// - Parameters:
    ///   - now: wall clock, nanoseconds since the Unix epoch (the responder's window and replay filter).
    ///   - keys: the configured PSKs by key id (responder).
    ///   - replayFilter: the node's message 1 memory (responder, PROTOCOL.md §3.4).
    /// - Throws: why the link must close; the machine is closed then.
    public mutating func next(
        now: UInt64, keys: (KeyID) -> PreSharedKey?, replayFilter: inout HandshakeReplayFilter, into output: inout ByteBuffer
    ) throws(Failure) -> Event? {
        do throws(Failure) {
            return try step(now: now, keys: keys, replayFilter: &replayFilter, into: &output)
        } catch {
            close()
            throw error
        }
    }

    private mutating func step(
        now: UInt64, keys: (KeyID) -> PreSharedKey?, replayFilter: inout HandshakeReplayFilter, into output: inout ByteBuffer
    ) throws(Failure) -> Event? {
        while true {
            switch state {
            case .idle:
                // Nothing may arrive before our message 1.
                guard inbound.readableBytes == 0 else { throw .handshake(.unexpectedMessage) }
                return nil
            case .initiating(var initiator):
                let established: LinkEstablished?
                do throws(HandshakeError) { established = try initiator.receive(&inbound) } catch { throw .handshake(error) }
                guard let established else {
                    state = .initiating(initiator)
                    return nil
                }
                let peer = takeRecordLayer(established)
                becomeEstablished(peer)
                // PROTOCOL.md §3.5: the initiator's first record goes out at once, empty.
                try seal(ByteBuffer(), flags: 0, into: &output)
                return .established(peer)
            case .responding(var responder):
                let established: LinkEstablished?
                do throws(HandshakeError) {
                    established = try responder.receive(&inbound, now: now, keys: keys, replayFilter: &replayFilter, into: &output)
                } catch {
                    throw .handshake(error)
                }
                guard let established else {
                    state = .responding(responder)
                    return nil
                }
                state = .awaitingFirstRecord(takeRecordLayer(established))
            case .awaitingFirstRecord(let peer):
                guard let record = try open() else { return nil }
                firstRecord = record
                becomeEstablished(peer)
                return .established(peer)
            case .established:
                if let record = firstRecord.take() { return .record(try payload(of: record)) }
                guard let record = try open() else { return nil }
                return .record(try payload(of: record))
            case .handedOff, .closed:
                return nil
            }
        }
    }

    private mutating func takeRecordLayer(_ established: LinkEstablished) -> Peer {
        opener = established.opener
        sealer = established.sealer
        maxPayload = established.opener.limits.maxPayload
        peerMaxPayload = Int(established.peerHello.maxRecordPayload)
        // Compressed records are accepted once negotiated; what we compress waits for `setCompression`.
        compressor = RecordCompressor(negotiated: established.features.contains(.compression), scope: .off, level: compressionLevel)
        return Peer(hello: established.peerHello, keyID: established.keyID, suite: established.suite, features: established.features)
    }

    private mutating func becomeEstablished(_ peer: Peer) {
        self.peer = peer
        keyID = peer.keyID
        state = .established
    }

    /// What this side compresses (PROTOCOL.md §4.2): `scope` is our setting for the peer, in
    /// effect only when both hellos offered compression. Set once established, before sealing.
    public mutating func setCompression(_ scope: CompressionScope) {
        guard case .established = state else { return }
        compressor = RecordCompressor(negotiated: compressor.acceptsCompressed, scope: scope, level: compressionLevel)
    }

    /// Moves the record layer — opener, sealer, the bytes not yet opened — into a machine of
    /// its own, for a driver on another thread (the data plane), which then seals and opens
    /// but neither compresses nor decompresses: this machine keeps the peer and compression
    /// (`compress`, `payload(of:)`). Nil unless established with the record layer here.
    public mutating func handOff() -> LinkMachine? {
        guard case .established = state, firstRecord == nil, let opener, let sealer else { return nil }
        var moved = LinkMachine(handingOff: self)
        moved.opener = opener
        moved.sealer = sealer
        moved.inbound = inbound
        self.opener = nil
        self.sealer = nil
        inbound = ByteBuffer()
        state = .handedOff
        return moved
    }

    private init(handingOff machine: LinkMachine) {
        state = .established
        isInitiator = machine.isInitiator
        compressionLevel = machine.compressionLevel
        maxPayload = machine.maxPayload
        peerMaxPayload = machine.peerMaxPayload
        peer = machine.peer
        keyID = machine.keyID
    }

    /// Ends the link: nothing is opened or sealed any more.
    public mutating func close() {
        state = .closed
        opener = nil
        sealer = nil
        firstRecord = nil
        inbound = ByteBuffer()
    }

    /// The other end closed the connection. Returns why that cut the link short — during the
    /// handshake `.handshake(.truncated)`, inside a record `.record(.truncated)` — or nil when
    /// it ended between records (or before we sent anything). The machine is closed after.
    public mutating func connectionClosed() -> Failure? {
        defer { close() }
        switch state {
        case .initiating, .responding, .awaitingFirstRecord: return .handshake(.truncated)
        case .established: return inbound.readableBytes > 0 ? .record(.truncated) : nil
        case .idle, .handedOff, .closed: return nil
        }
    }
}
