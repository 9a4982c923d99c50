import Testing
@testable import BYSTProto

/// MS-NLMP §4.2.4 (NTLMv2 authentication): user "User", domain "Domain", password
/// "Password", server challenge 0123456789abcdef, client challenge aa×8, time 0.
@Suite struct NTLMTests {
    static let challengeMessage = Hex.decode(
        "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000"
            + "060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c00530065007200"
            + "76006500720000000000")!

    @Test func ntowfv2() throws {
        #expect(Hex.encode(try NTLMv2.ntowf(password: "Password", user: "User", domain: "Domain")) == "0c868a403bfd7a93a3001ef22ef02e3f")
    }

    @Test func parsesTheChallengeMessage() throws {
        let challenge = try NTLMMessages.parseChallenge(Self.challengeMessage)
        #expect(challenge.flags == 0xe28a_8233)
        #expect(Hex.encode(challenge.serverChallenge) == "0123456789abcdef")
        #expect(Hex.encode(challenge.targetInfo) == "02000c0044006f006d00610069006e0001000c005300650072007600650072000000" + "0000")
        #expect(challenge.timestamp == nil)
    }

    @Test func ntlmv2Responses() throws {
        let challenge = try NTLMMessages.parseChallenge(Self.challengeMessage)
        let key = try NTLMv2.ntowf(password: "Password", user: "User", domain: "Domain")
        let responses = try NTLMv2.responses(
            key: key, serverChallenge: challenge.serverChallenge, clientChallenge: [UInt8](repeating: 0xaa, count: 8), time: 0,
            targetInfo: challenge.targetInfo)
        #expect(Hex.encode(responses.lm) == "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        #expect(Hex.encode(responses.ntProof) == "68cd0ab851e51c96aabc927bebef6a1c")
        #expect(Hex.encode(responses.sessionBaseKey) == "8de40ccadbc14a82f15cb0ad0de95ca3")
        // temp: version 1 1, Z(6), time, client challenge, Z(4), target info, Z(4).
        #expect(Array(responses.nt[16..<24]) == [1, 1, 0, 0, 0, 0, 0, 0])
        #expect(responses.nt.count == 16 + 28 + challenge.targetInfo.count + 4)
    }

    @Test func authenticateMessageLayout() {
        let message = NTLMMessages.authenticate(flags: 0x8201, lmResponse: [1, 2], ntResponse: [3, 4, 5], domain: "D", user: "u",
                                                workstation: "W")
        #expect(Array(message[0..<12]) == Array("NTLMSSP\0".utf8) + [3, 0, 0, 0])
        // LM at 64 (2 bytes), NT at 66 (3), domain at 69 (2), user at 71 (2), workstation at 73 (2).
        #expect(NTLMMessages.read16(message, 12) == 2 && NTLMMessages.read32(message, 16) == 64)
        #expect(NTLMMessages.read16(message, 20) == 3 && NTLMMessages.read32(message, 24) == 66)
        #expect(NTLMMessages.read32(message, 32) == 69 && NTLMMessages.read32(message, 40) == 71 && NTLMMessages.read32(message, 48) == 73)
        #expect(NTLMMessages.read32(message, 60) == 0x8201)
        #expect(Array(message[64...]) == [1, 2, 3, 4, 5, 0x44, 0, 0x75, 0, 0x57, 0])
    }

    @Test func hostileChallengesThrowOrLoseTheirTargetInfo() throws {
        var lying = Self.challengeMessage
        lying[40] = 0xff; lying[41] = 0xff  // target info length past the end: no target info
        #expect(try NTLMMessages.parseChallenge(lying).targetInfo.isEmpty)
        var inHeader = Self.challengeMessage
        inHeader[44] = 8  // target info "in" the header
        #expect(try NTLMMessages.parseChallenge(inHeader).targetInfo.isEmpty)
        for bytes in [[], Array("NTLMSSP\0".utf8), Array(Self.challengeMessage.prefix(31))] {
            #expect(throws: ProxyAuthError.self) { try NTLMMessages.parseChallenge(bytes) }
        }
        var type1 = Self.challengeMessage
        type1[8] = 1
        #expect(throws: ProxyAuthError.self) { try NTLMMessages.parseChallenge(type1) }
    }

    /// squid's ntlm_fake_auth: 49 bytes, no NEGOTIATE_TARGET_INFO, no Unicode, the bytes after
    /// the context are its domain name, not target info fields.
    @Test func squidFakeHelperChallenge() throws {
        let bytes = try #require(Base64URL.decode("TlRMTVNTUAACAAAACQAJAK6qqqoGgggAtID3a24dQMQAAAAAAAA6AFdPUktHUk9VUA=="))
        let challenge = try NTLMMessages.parseChallenge(bytes)
        #expect(challenge.flags == 0x0008_8206 && challenge.targetInfo.isEmpty)
        // The same helper answering our Type 1 echoes NEGOTIATE_TARGET_INFO without the fields.
        let echoed = try #require(Base64URL.decode("TlRMTVNTUAACAAAACQAJAK6qqqoHgoigk3eRUm4SnNoAAAAAAAA6AFdPUktHUk9VUA=="))
        #expect(try NTLMMessages.parseChallenge(echoed).targetInfo.isEmpty)
        #expect(Hex.encode(challenge.serverChallenge) == "b480f76b6e1d40c4")
        // OEM names in the Type 3, since Unicode was not negotiated.
        let message = NTLMMessages.authenticate(flags: challenge.flags, lmResponse: [], ntResponse: [], domain: "CORP", user: "byst", workstation: "GW")
        #expect(Array(message[64...]) == Array("CORPbystGW".utf8))
    }

    /// A challenge without target info (32 bytes, or an empty field whose offset means
    /// nothing): NTLMv2 over an empty target info.
    @Test func challengeWithoutTargetInfo() throws {
        #expect(try NTLMMessages.parseChallenge(Array(Self.challengeMessage.prefix(32))).targetInfo.isEmpty)
        var empty = Self.challengeMessage
        empty[40] = 0; empty[41] = 0; empty[44] = 0xff; empty[45] = 0xff
        #expect(try NTLMMessages.parseChallenge(empty).targetInfo.isEmpty)
        empty[22] &= 0x7f  // NEGOTIATE_TARGET_INFO off: the fields are not read at all
        empty[40] = 0xff
        #expect(try NTLMMessages.parseChallenge(empty).targetInfo.isEmpty)
    }

    @Test func authenticateFlagsPickOneCharacterSet() {
        #expect(NTLMMessages.authenticateFlags(challenge: 0xa088_8207) == 0xa088_8205)
        #expect(NTLMMessages.authenticateFlags(challenge: 0x0008_8206) == 0x0008_8206)
    }

    @Test func domainBackslashUser() {
        #expect(ProxyCredentials(user: "CORP\\alice", password: "p").ntlmAccount == ("CORP", "alice"))
        #expect(ProxyCredentials(user: "alice", password: "p").ntlmAccount == ("", "alice"))
    }
}
