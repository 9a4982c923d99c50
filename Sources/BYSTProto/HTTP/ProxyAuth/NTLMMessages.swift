/// The three NTLM messages (MS-NLMP §2.2.1) as a client sends and reads them: NEGOTIATE
/// (Type 1), CHALLENGE (Type 2) and AUTHENTICATE (Type 3). All integers are little-endian;
/// variable fields are (length, allocated length, offset) triples into the payload.
public enum NTLMMessages {
    static let signature = Array("NTLMSSP\0".utf8)

    /// Flags (MS-NLMP §2.2.2.5) we ask for: Unicode strings, NTLM, the target's info (for
    /// NTLMv2), extended session security, 128-bit; plus OEM and request-target, as clients do.
    public static let negotiateFlags: UInt32 = 0x0000_0001 | 0x0000_0002 | 0x0000_0004 | 0x0000_0200
        | 0x0000_8000 | 0x0008_0000 | 0x0080_0000 | 0x2000_0000 | 0x8000_0000
    static let unicodeFlag: UInt32 = 0x0000_0001
    static let oemFlag: UInt32 = 0x0000_0002
    static let targetInfoFlag: UInt32 = 0x0080_0000

    /// The flags of our AUTHENTICATE_MESSAGE: what both sides offered, with one character
    /// set — Unicode when the challenge has it (MS-NLMP §2.2.2.5), as servers that echo
    /// both (squid's helpers) read OEM when it is set.
    public static func authenticateFlags(challenge: UInt32) -> UInt32 {
        let common = challenge & negotiateFlags
        return common & unicodeFlag != 0 ? common & ~oemFlag : common
    }

    /// NEGOTIATE_MESSAGE without domain or workstation.
    public static func negotiate() -> [UInt8] {
        var out = signature
        append32(1, to: &out)
        append32(negotiateFlags, to: &out)
        out += [UInt8](repeating: 0, count: 16)  // DomainNameFields, WorkstationFields: empty
        return out
    }

    /// What a CHALLENGE_MESSAGE tells the client.
    public struct Challenge: Sendable, Equatable {
        public var flags: UInt32
        public var serverChallenge: [UInt8]
        public var targetInfo: [UInt8]

        /// MsvAvTimestamp (AvId 7) in `targetInfo`, if present: the time NTLMv2 must use.
        public var timestamp: UInt64? {
            var at = 0
            while at + 4 <= targetInfo.count {
                let id = read16(targetInfo, at), length = Int(read16(targetInfo, at + 2))
                guard id != 0, at + 4 + length <= targetInfo.count else { return nil }
                if id == 7, length == 8 { return read64(targetInfo, at + 4) }
                at += 4 + length
            }
            return nil
        }
    }

    public static func parseChallenge(_ bytes: [UInt8]) throws(ProxyAuthError) -> Challenge {
        guard bytes.count >= 32, Array(bytes[0..<8]) == signature else { throw .malformedNTLM("not an NTLM message") }
        guard read32(bytes, 8) == 2 else { throw .malformedNTLM("message type \(read32(bytes, 8)), expected 2 (CHALLENGE)") }
        let flags = read32(bytes, 20)
        // Target info fields that do not point into the payload (after the 48-byte header) are
        // not there: older servers send none, and squid's ntlm_fake_auth sets
        // NEGOTIATE_TARGET_INFO over its domain name. NTLMv2 then proves the password over an
        // empty target info (a proxy that wanted one refuses it: a clear 407, not a crash).
        var targetInfo: [UInt8] = []
        if bytes.count >= 48, flags & targetInfoFlag != 0 {
            let length = Int(read16(bytes, 40)), offset = Int(read32(bytes, 44))
            if offset >= 48, offset <= bytes.count, length <= bytes.count - offset { targetInfo = Array(bytes[offset..<(offset + length)]) }
        }
        return Challenge(flags: flags, serverChallenge: Array(bytes[24..<32]), targetInfo: targetInfo)
    }

    /// AUTHENTICATE_MESSAGE carrying NTLMv2 responses, without a session key or MIC (the
    /// proxy needs only the proof of the password; no signing or sealing follows). Names are
    /// UTF-16LE when `flags` has NEGOTIATE_UNICODE, else in the OEM form (their UTF-8 bytes).
    public static func authenticate(
        flags: UInt32, lmResponse: [UInt8], ntResponse: [UInt8], domain: String, user: String, workstation: String
    ) -> [UInt8] {
        let text = { (name: String) in flags & unicodeFlag != 0 ? utf16LE(name) : Array(name.utf8) }
        let fields: [[UInt8]] = [lmResponse, ntResponse, text(domain), text(user), text(workstation), []]
        var out = signature
        append32(3, to: &out)
        var offset = 64
        for field in fields {
            append16(UInt16(truncatingIfNeeded: field.count), to: &out)
            append16(UInt16(truncatingIfNeeded: field.count), to: &out)
            append32(UInt32(offset), to: &out)
            offset += field.count
        }
        append32(flags, to: &out)
        for field in fields { out += field }
        return out
    }

    static func utf16LE(_ text: String) -> [UInt8] {
        text.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
    }

    static func append16(_ value: UInt16, to out: inout [UInt8]) {
        out += [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)]
    }

    static func append32(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func read16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    static func read32(_ bytes: [UInt8], _ at: Int) -> UInt32 { UInt32(read16(bytes, at)) | UInt32(read16(bytes, at + 2)) << 16 }
    static func read64(_ bytes: [UInt8], _ at: Int) -> UInt64 { UInt64(read32(bytes, at)) | UInt64(read32(bytes, at + 4)) << 32 }
}
