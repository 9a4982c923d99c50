/// NTLMv2 responses (MS-NLMP §3.3.2): the proof that the client knows the password,
/// bound to the proxy's 8-byte challenge and target info, a client challenge and a time.
public enum NTLMv2 {
    /// NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)).
    public static func ntowf(password: String, user: String, domain: String) throws(ProxyAuthError) -> [UInt8] {
        let ntHash = MD4.digest(NTLMMessages.utf16LE(password))
        return try hmac(ntHash, NTLMMessages.utf16LE(user.uppercased() + domain))
    }

    public struct Responses: Sendable, Equatable {
        public var lm: [UInt8]
        public var nt: [UInt8]
        /// NTProofStr: the first 16 bytes of `nt`.
        public var ntProof: [UInt8] { Array(nt.prefix(16)) }
        public var sessionBaseKey: [UInt8]
    }

    /// `time` is Windows FILETIME (100 ns since 1601-01-01 UTC).
    public static func responses(
        key: [UInt8], serverChallenge: [UInt8], clientChallenge: [UInt8], time: UInt64, targetInfo: [UInt8]
    ) throws(ProxyAuthError) -> Responses {
        var temp: [UInt8] = [1, 1, 0, 0, 0, 0, 0, 0]
        for shift in stride(from: 0, to: 64, by: 8) { temp.append(UInt8(truncatingIfNeeded: time >> UInt64(shift))) }
        temp += clientChallenge + [0, 0, 0, 0] + targetInfo + [0, 0, 0, 0]
        let proof = try hmac(key, serverChallenge + temp)
        let lm = try hmac(key, serverChallenge + clientChallenge) + clientChallenge
        return Responses(lm: lm, nt: proof + temp, sessionBaseKey: try hmac(key, proof))
    }

    /// FILETIME of a Unix time in nanoseconds.
    public static func fileTime(unixNanoseconds: UInt64) -> UInt64 {
        unixNanoseconds / 100 + 116_444_736_000_000_000
    }

    private static func hmac(_ key: [UInt8], _ data: [UInt8]) throws(ProxyAuthError) -> [UInt8] {
        do throws(CryptoError) { return try LegacyDigest.md5.hmac(key: key, data: data) } catch { throw .crypto("\(error)") }
    }
}
