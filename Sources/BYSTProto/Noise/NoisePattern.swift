/// Handshake patterns (Noise §7) and the `psk` modifier (§9.3).
public struct NoisePattern: Sendable, Equatable {
    public enum Token: Sendable, Equatable { case e, s, ee, es, se, ss, psk }

    public let name: String
    /// Pre-message tokens (§7.1) known before the handshake: initiator's, then responder's.
    public let initiatorPreMessage: [Token]
    public let responderPreMessage: [Token]
    /// Message token lists, alternating initiator → responder, starting with the initiator.
    public private(set) var messages: [[Token]]

    /// The fundamental patterns this implementation runs (§7.4, §7.5).
    static let fundamentals: [String: NoisePattern] = [
        "NN": NoisePattern(name: "NN", initiatorPreMessage: [], responderPreMessage: [], messages: [[.e], [.e, .ee]]),
        "NK": NoisePattern(name: "NK", initiatorPreMessage: [], responderPreMessage: [.s], messages: [[.e, .es], [.e, .ee]]),
        "KK": NoisePattern(name: "KK", initiatorPreMessage: [.s], responderPreMessage: [.s],
                           messages: [[.e, .es, .ss], [.e, .ee, .se]]),
        "XX": NoisePattern(name: "XX", initiatorPreMessage: [], responderPreMessage: [],
                           messages: [[.e], [.e, .ee, .s, .es], [.s, .se]]),
        "IK": NoisePattern(name: "IK", initiatorPreMessage: [], responderPreMessage: [.s],
                           messages: [[.e, .es, .s, .ss], [.e, .ee, .se]]),
    ]

    /// A pattern by name, e.g. `NNpsk0`, `XXpsk3`, `IKpsk2`; nil when unsupported.
    public init?(named fullName: String) {
        let base = String(fullName.prefix { $0.isUppercase })
        guard var pattern = Self.fundamentals[base] else { return nil }
        let modifiers = fullName.dropFirst(base.count)
        if !modifiers.isEmpty {
            for modifier in modifiers.split(separator: "+", omittingEmptySubsequences: false) {
                guard modifier.hasPrefix("psk"), let index = Int(modifier.dropFirst(3)),
                      index >= 0, index <= pattern.messages.count else { return nil }
                // psk0 goes first in message 1; pskN goes last in message N (§9.3).
                if index == 0 { pattern.messages[0].insert(.psk, at: 0) } else { pattern.messages[index - 1].append(.psk) }
            }
        }
        self = NoisePattern(name: fullName, initiatorPreMessage: pattern.initiatorPreMessage,
                            responderPreMessage: pattern.responderPreMessage, messages: pattern.messages)
    }

    private init(name: String, initiatorPreMessage: [Token], responderPreMessage: [Token], messages: [[Token]]) {
        self.name = name
        self.initiatorPreMessage = initiatorPreMessage
        self.responderPreMessage = responderPreMessage
        self.messages = messages
    }

    public var pskCount: Int { messages.joined().filter { $0 == .psk }.count }
}

/// A parsed protocol name `Noise_<pattern>_<dh>_<cipher>_<hash>` (§8).
public struct NoiseProtocol: Sendable, Equatable {
    public let name: String
    public let pattern: NoisePattern
    public let cipher: AEADAlgorithm
    public let hash: HashFunction

    public init(name: String) throws(NoiseError) {
        let parts = name.split(separator: "_").map(String.init)
        guard parts.count == 5, parts[0] == "Noise", parts[2] == "25519",
              let pattern = NoisePattern(named: parts[1]),
              let cipher = AEADAlgorithm.allCases.first(where: { $0.noiseName == parts[3] }),
              let hash = HashFunction(rawValue: parts[4])
        else { throw .unsupportedProtocol(name) }
        self.name = name
        self.pattern = pattern
        self.cipher = cipher
        self.hash = hash
    }
}
