import Foundation
import Testing
@testable import BYSTProto

/// Runs every vector of the official Noise test-vector file (cacophony format, see
/// Vectors/README.md) whose protocol this implementation supports.
///
/// The file is `$BYST_NOISE_VECTORS` when set, else the copy committed under `Vectors/`.
/// The test fails if the file is missing or if no vector ran.
@Suite struct NoiseVectorTests {
    struct VectorFile: Decodable { let vectors: [Vector] }
    struct Vector: Decodable {
        let protocol_name: String
        let init_prologue: String
        let init_psks: [String]?
        let init_static: String?
        let init_ephemeral: String
        let init_remote_static: String?
        let resp_prologue: String
        let resp_psks: [String]?
        let resp_static: String?
        let resp_ephemeral: String?
        let resp_remote_static: String?
        let handshake_hash: String?
        let messages: [Message]
    }
    struct Message: Decodable { let payload: String; let ciphertext: String }
    enum VectorError: Error { case badHex(String) }

    static func vectorFileURL() -> URL {
        if let path = ProcessInfo.processInfo.environment["BYST_NOISE_VECTORS"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Vectors/noise-psk-vectors.json")
    }

    @Test func everySupportedVectorPasses() throws {
        let url = Self.vectorFileURL()
        let data = try #require(try? Data(contentsOf: url), "Noise vector file missing: \(url.path)")
        let file = try JSONDecoder().decode(VectorFile.self, from: data)
        var ran: [String: Int] = [:]
        var skipped: [String] = []
        for vector in file.vectors {
            guard let proto = try? NoiseProtocol(name: vector.protocol_name) else {
                skipped.append(vector.protocol_name)
                continue
            }
            try run(vector, proto)
            ran[vector.protocol_name, default: 0] += 1
        }
        let total = ran.values.reduce(0, +)
        print("Noise vectors: ran \(total) of \(file.vectors.count) from \(url.path)")
        for (name, count) in ran.sorted(by: { $0.key < $1.key }) { print("  \(count)  \(name)") }
        if !skipped.isEmpty { print("  unsupported, not run: \(skipped.joined(separator: ", "))") }
        #expect(total > 0, "no Noise vector ran")
    }

    private func bytes(_ hex: String?) throws -> [UInt8]? {
        guard let hex else { return nil }
        guard let decoded = Hex.decode(hex) else { throw VectorError.badHex(hex) }
        return decoded
    }

    private func run(_ v: Vector, _ proto: NoiseProtocol) throws {
        func key(_ hex: String?) throws -> X25519.PrivateKey? {
            try bytes(hex).map { try X25519.PrivateKey(rawRepresentation: $0) }
        }
        func pub(_ hex: String?) throws -> X25519.PublicKey? { try bytes(hex).map { try X25519.PublicKey(bytes: $0) } }
        var initiator = try HandshakeState(
            protocol: proto, initiator: true, prologue: try bytes(v.init_prologue) ?? [],
            localStatic: try key(v.init_static), remoteStatic: try pub(v.init_remote_static),
            psks: try (v.init_psks ?? []).map { SecretBytes(try bytes($0) ?? []) },
            testingOnlyEphemeral: try key(v.init_ephemeral))
        var responder = try HandshakeState(
            protocol: proto, initiator: false, prologue: try bytes(v.resp_prologue) ?? [],
            localStatic: try key(v.resp_static), remoteStatic: try pub(v.resp_remote_static),
            psks: try (v.resp_psks ?? []).map { SecretBytes(try bytes($0) ?? []) },
            testingOnlyEphemeral: try key(v.resp_ephemeral))

        var transport: (i2r: CipherState, r2i: CipherState, iSide: CipherState, rSide: CipherState)?
        for (index, message) in v.messages.enumerated() {
            let payload = try bytes(message.payload) ?? []
            let expected = try bytes(message.ciphertext) ?? []
            let initiatorSends = index % 2 == 0
            if transport == nil {
                var sender = initiatorSends ? initiator : responder
                var receiver = initiatorSends ? responder : initiator
                let wire = try sender.writeMessage(payload: payload)
                #expect(Hex.encode(wire) == message.ciphertext, "\(v.protocol_name) message \(index) ciphertext")
                let read = try receiver.readMessage(expected)
                #expect(read == payload, "\(v.protocol_name) message \(index) payload")
                if initiatorSends { (initiator, responder) = (sender, receiver) } else { (responder, initiator) = (sender, receiver) }
                if initiator.isComplete && responder.isComplete {
                    #expect(initiator.handshakeHash == responder.handshakeHash)
                    if let hash = v.handshake_hash {
                        #expect(Hex.encode(initiator.handshakeHash) == hash, "\(v.protocol_name) handshake hash")
                    }
                    let (i1, i2) = try initiator.split()
                    let (r1, r2) = try responder.split()
                    transport = (i1, r2, r1, i2)
                }
            } else if var t = transport {
                // Initiator sends with c1, responder with c2 (§5.2 Split()).
                if initiatorSends {
                    let wire = try t.i2r.encryptWithAd([], plaintext: payload)
                    #expect(Hex.encode(wire) == message.ciphertext, "\(v.protocol_name) transport \(index)")
                    #expect(try t.iSide.decryptWithAd([], ciphertext: expected) == payload)
                } else {
                    let wire = try t.r2i.encryptWithAd([], plaintext: payload)
                    #expect(Hex.encode(wire) == message.ciphertext, "\(v.protocol_name) transport \(index)")
                    #expect(try t.rSide.decryptWithAd([], ciphertext: expected) == payload)
                }
                transport = t
            }
        }
        #expect(transport != nil, "\(v.protocol_name): handshake did not complete")
    }
}
