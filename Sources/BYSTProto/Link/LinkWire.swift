import NIOCore

/// Constants of the link handshake (PROTOCOL.md §3).
public enum LinkWire {
    /// "BYST"
    public static let magic: [UInt8] = [0x42, 0x59, 0x53, 0x54]
    public static let version: UInt8 = 1
    /// magic(4) version(1) suite(1) key id(8)
    public static let initiationHeaderSize = 14
    /// The u16 length in front of each Noise message.
    public static let lengthSize = 2
    /// Bound on a Noise handshake message; the hellos are ~100 bytes, so 1 KiB leaves room
    /// for extensions while bounding what an unauthenticated peer makes us buffer.
    public static let maxNoiseMessage = 1024
    /// Mixed into the Noise prologue with the initiation header (PROTOCOL.md §3.2).
    public static let prologueLabel = Array("BYST link v1".utf8)

    static func noiseProtocol(for suite: AEADAlgorithm) -> NoiseProtocol {
        let name = "Noise_NNpsk0_25519_\(suite.noiseName)_SHA256"
        // Both names are fixed, supported strings: failing here is a bug, not input.
        guard let parsed = try? NoiseProtocol(name: name) else { preconditionFailure("unsupported \(name)") }
        return parsed
    }

    static func prologue(header: [UInt8], binding: [UInt8] = []) -> [UInt8] { prologueLabel + header + binding }

    /// Reads a u16-length-prefixed message at `offset` if it is complete.
    static func lengthPrefixed(in buffer: ByteBuffer, at offset: Int) throws(HandshakeError) -> [UInt8]? {
        guard let length = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt16.self) else { return nil }
        guard Int(length) <= maxNoiseMessage else { throw .messageTooLarge(Int(length)) }
        return buffer.getBytes(at: buffer.readerIndex + offset + lengthSize, length: Int(length))
    }
}

/// A finished link handshake: the negotiated parameters and the record layer keys.
public struct LinkEstablished {
    /// What the peer said about itself.
    public let peerHello: LinkHello
    /// The PSK the link was authenticated with.
    public let keyID: KeyID
    public let suite: AEADAlgorithm
    /// Features both sides offered.
    public let features: LinkFeatures
    public let handshakeHash: [UInt8]
    public var sealer: RecordSealer
    public var opener: RecordOpener
}

extension LinkEstablished {
    init(isInitiator: Bool, state: HandshakeState, suite: AEADAlgorithm, keyID: KeyID, local: LinkHello,
         peer: LinkHello, limits: RecordLimits) throws(HandshakeError) {
        let keys: (SecretBytes, SecretBytes)
        do throws(NoiseError) { keys = try state.splitKeys() } catch { throw HandshakeError(error) }
        let (sendKey, receiveKey) = isInitiator ? keys : (keys.1, keys.0)
        do throws(RecordError) {
            sealer = try RecordSealer(algorithm: suite, key: sendKey, limits: limits,
                                      peerMaxPayload: Int(peer.maxRecordPayload))
            opener = try RecordOpener(algorithm: suite, key: receiveKey, limits: limits)
        } catch {
            if case .crypto(let crypto) = error { throw .crypto(crypto) }
            throw .unexpectedMessage
        }
        self.peerHello = peer
        self.keyID = keyID
        self.suite = suite
        self.features = local.features.intersection(peer.features)
        self.handshakeHash = state.handshakeHash
    }
}
