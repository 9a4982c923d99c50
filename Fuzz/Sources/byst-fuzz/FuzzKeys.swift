@testable import BYSTProto

/// Fixed keys and clocks, so that the fuzzer can reach what lies behind authentication
/// (seeds hold real handshakes and records made with these; see SeedWriter).
enum FuzzKeys {
    /// Wall clock of every handshake: seeds' hellos carry this timestamp.
    static let now: UInt64 = 1_800_000_000 * 1_000_000_000

    static let psk = presharedKey(offset: 1)
    static let otherPSK = presharedKey(offset: 101)
    static let recordKey = SecretBytes((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
    static let initiatorEphemeral = privateKey(offset: 11)
    static let responderEphemeral = privateKey(offset: 51)

    static func lookup(_ id: KeyID) -> PreSharedKey? {
        [psk, otherPSK].first { $0.id == id }
    }

    private static func presharedKey(offset: UInt8) -> PreSharedKey {
        let bytes = (0..<32).map { offset &+ UInt8($0) &* 3 }
        do { return try PreSharedKey(secret: SecretBytes(bytes)) } catch { preconditionFailure("fixed PSK refused: \(error)") }
    }

    private static func privateKey(offset: UInt8) -> X25519.PrivateKey {
        let bytes = (0..<32).map { offset &+ UInt8($0) &* 5 }
        do { return try X25519.PrivateKey(rawRepresentation: bytes) } catch { preconditionFailure("fixed X25519 key refused: \(error)") }
    }
}
