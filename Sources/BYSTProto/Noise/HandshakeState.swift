/// Noise `HandshakeState` (§5.3), generic over the patterns in `NoisePattern`, sans-IO:
/// messages are byte arrays in and out.
///
/// **Invariants**
/// - Messages alternate initiator → responder → …, starting with the initiator.
/// - The ephemeral key is generated inside unless the test-only initialiser injected one;
///   production code cannot reuse an ephemeral.
/// - Once `isComplete`, only `split()` / `handshakeHash` are meaningful.
public struct HandshakeState {
    public let noiseProtocol: NoiseProtocol
    public let isInitiator: Bool
    private var symmetric: SymmetricState
    private var localStatic: X25519.PrivateKey?
    private var localEphemeral: X25519.PrivateKey?
    private var remoteStatic: X25519.PublicKey?
    private var remoteEphemeral: X25519.PublicKey?
    private var psks: [SecretBytes]
    private var messageIndex = 0

    /// `Initialize(...)` for production: ephemerals come from the CSPRNG.
    public init(
        protocol noiseProtocol: NoiseProtocol, initiator: Bool, prologue: [UInt8],
        localStatic: X25519.PrivateKey? = nil, remoteStatic: X25519.PublicKey? = nil, psks: [SecretBytes] = []
    ) throws(NoiseError) {
        try self.init(protocol: noiseProtocol, initiator: initiator, prologue: prologue, localStatic: localStatic,
                      remoteStatic: remoteStatic, psks: psks, testingOnlyEphemeral: nil)
    }

    /// Test-only: inject the ephemeral key so the official vectors can be reproduced.
    /// Internal on purpose (reachable through `@testable import` only): reusing an
    /// ephemeral key in production would be catastrophic.
    init(
        protocol noiseProtocol: NoiseProtocol, initiator: Bool, prologue: [UInt8],
        localStatic: X25519.PrivateKey?, remoteStatic: X25519.PublicKey?, psks: [SecretBytes],
        testingOnlyEphemeral: X25519.PrivateKey?
    ) throws(NoiseError) {
        guard psks.count == noiseProtocol.pattern.pskCount,
              psks.allSatisfy({ $0.count == 32 }) else { throw .missingKey("psk") }
        self.noiseProtocol = noiseProtocol
        self.isInitiator = initiator
        self.localStatic = localStatic
        self.remoteStatic = remoteStatic
        self.localEphemeral = testingOnlyEphemeral
        self.psks = psks
        symmetric = try SymmetricState(protocolName: noiseProtocol.name, hash: noiseProtocol.hash,
                                       cipher: noiseProtocol.cipher)
        try symmetric.mixHash(prologue)
        // Pre-messages (§7.1): only `s` occurs in the supported patterns.
        for (tokens, initiatorOwns) in [(noiseProtocol.pattern.initiatorPreMessage, true),
                                        (noiseProtocol.pattern.responderPreMessage, false)] {
            for token in tokens where token == .s {
                let key: X25519.PublicKey? = (initiatorOwns == initiator) ? localStatic?.publicKey : remoteStatic
                guard let key else { throw .missingKey("pre-message s") }
                try symmetric.mixHash(key.bytes)
            }
        }
    }

    public var isComplete: Bool { messageIndex >= noiseProtocol.pattern.messages.count }
    public var isMyTurn: Bool { !isComplete && (messageIndex % 2 == 0) == isInitiator }
    public var handshakeHash: [UInt8] { symmetric.handshakeHash }
    public var remoteStaticKey: X25519.PublicKey? { remoteStatic }

    /// `WriteMessage(payload, message_buffer)`.
    public mutating func writeMessage(payload: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard isMyTurn else { throw .outOfTurn }
        var out: [UInt8] = []
        for token in noiseProtocol.pattern.messages[messageIndex] {
            switch token {
            case .e:
                let ephemeral: X25519.PrivateKey
                if let injected = localEphemeral {
                    ephemeral = injected
                } else {
                    do throws(CryptoError) { ephemeral = try .generate() } catch { throw .crypto(error) }
                    localEphemeral = ephemeral
                }
                out += ephemeral.publicKey.bytes
                try symmetric.mixHash(ephemeral.publicKey.bytes)
                if noiseProtocol.pattern.pskCount > 0 { try symmetric.mixKey(SecretBytes(ephemeral.publicKey.bytes)) }
            case .s:
                guard let localStatic else { throw .missingKey("s") }
                out += try symmetric.encryptAndHash(localStatic.publicKey.bytes)
            case .ee, .es, .se, .ss:
                try mixDH(token)
            case .psk:
                try symmetric.mixKeyAndHash(psks.removeFirst())
            }
        }
        out += try symmetric.encryptAndHash(payload)
        guard out.count <= 65535 else { throw .messageTooLong }
        messageIndex += 1
        return out
    }

    /// `ReadMessage(message, payload_buffer)`: returns the payload.
    public mutating func readMessage(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard !isComplete, !isMyTurn else { throw .outOfTurn }
        guard message.count <= 65535 else { throw .messageTooLong }
        var rest = message[...]
        func take(_ count: Int) throws(NoiseError) -> [UInt8] {
            guard rest.count >= count else { throw .truncated }
            defer { rest = rest.dropFirst(count) }
            return Array(rest.prefix(count))
        }
        for token in noiseProtocol.pattern.messages[messageIndex] {
            switch token {
            case .e:
                let bytes = try take(X25519.keySize)
                do { remoteEphemeral = try X25519.PublicKey(bytes: bytes) } catch { throw .invalidPublicKey }
                try symmetric.mixHash(bytes)
                if noiseProtocol.pattern.pskCount > 0 { try symmetric.mixKey(SecretBytes(bytes)) }
            case .s:
                let length = X25519.keySize + (symmetric.cipher.hasKey ? AEADAlgorithm.tagSize : 0)
                let plain = try symmetric.decryptAndHash(try take(length))
                do { remoteStatic = try X25519.PublicKey(bytes: plain) } catch { throw .invalidPublicKey }
            case .ee, .es, .se, .ss:
                try mixDH(token)
            case .psk:
                try symmetric.mixKeyAndHash(psks.removeFirst())
            }
        }
        if symmetric.cipher.hasKey, rest.count < AEADAlgorithm.tagSize { throw .truncated }
        let payload = try symmetric.decryptAndHash(Array(rest))
        messageIndex += 1
        return payload
    }

    /// `Split()`: (initiator→responder, responder→initiator) transport keys.
    public func splitKeys() throws(NoiseError) -> (SecretBytes, SecretBytes) {
        guard isComplete else { throw .outOfTurn }
        return try symmetric.splitKeys()
    }

    public func split() throws(NoiseError) -> (CipherState, CipherState) {
        guard isComplete else { throw .outOfTurn }
        return try symmetric.split()
    }

    /// `ee`, `es`, `se`, `ss` (§5.3): which local and remote key each side uses.
    private mutating func mixDH(_ token: NoisePattern.Token) throws(NoiseError) {
        let local: X25519.PrivateKey?
        let remote: X25519.PublicKey?
        switch (token, isInitiator) {
        case (.ee, _): (local, remote) = (localEphemeral, remoteEphemeral)
        case (.ss, _): (local, remote) = (localStatic, remoteStatic)
        case (.es, true), (.se, false): (local, remote) = (localEphemeral, remoteStatic)
        case (.es, false), (.se, true): (local, remote) = (localStatic, remoteEphemeral)
        default: preconditionFailure("mixDH called with a non-DH token")
        }
        guard let local, let remote else { throw .missingKey("DH \(token)") }
        let shared: SecretBytes
        do { shared = try local.sharedSecret(with: remote) } catch { throw .invalidPublicKey }
        try symmetric.mixKey(shared)
    }
}
