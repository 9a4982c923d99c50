/// MD4 (RFC 1320), for one use only: NTLM's NT hash, MD4(UTF-16LE(password)) (MS-NLMP
/// §3.3.2). OpenSSL 3 keeps MD4 in its legacy provider, which a default install does not
/// load, so it is here. It is broken as a hash; NTLMv2 only feeds it into HMAC-MD5.
public enum MD4 {
    public static func digest(_ message: [UInt8]) -> [UInt8] {
        var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bitLength = UInt64(message.count) &* 8
        for shift in stride(from: 0, to: 64, by: 8) { padded.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        var words = [UInt32](repeating: 0, count: 16)
        for block in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let at = block + i * 4
                words[i] = UInt32(padded[at]) | UInt32(padded[at + 1]) << 8 | UInt32(padded[at + 2]) << 16 | UInt32(padded[at + 3]) << 24
            }
            compress(&state, words)
        }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for word in [state.0, state.1, state.2, state.3] {
            for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return out
    }

    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32), _ x: [UInt32]) {
        var (a, b, c, d) = state
        func rotl(_ v: UInt32, _ s: UInt32) -> UInt32 { v << s | v >> (32 - s) }
        let f = { (x: UInt32, y: UInt32, z: UInt32) in x & y | ~x & z }
        let g = { (x: UInt32, y: UInt32, z: UInt32) in x & y | x & z | y & z }
        let h = { (x: UInt32, y: UInt32, z: UInt32) in x ^ y ^ z }
        // Round 1: [abcd k s] a = (a + F(b,c,d) + X[k]) <<< s.
        for i in stride(from: 0, to: 16, by: 4) {
            a = rotl(a &+ f(b, c, d) &+ x[i], 3)
            d = rotl(d &+ f(a, b, c) &+ x[i + 1], 7)
            c = rotl(c &+ f(d, a, b) &+ x[i + 2], 11)
            b = rotl(b &+ f(c, d, a) &+ x[i + 3], 19)
        }
        // Round 2: a = (a + G(b,c,d) + X[k] + 5A827999) <<< s, k going down the columns.
        for i in 0..<4 {
            a = rotl(a &+ g(b, c, d) &+ x[i] &+ 0x5a82_7999, 3)
            d = rotl(d &+ g(a, b, c) &+ x[i + 4] &+ 0x5a82_7999, 5)
            c = rotl(c &+ g(d, a, b) &+ x[i + 8] &+ 0x5a82_7999, 9)
            b = rotl(b &+ g(c, d, a) &+ x[i + 12] &+ 0x5a82_7999, 13)
        }
        // Round 3: a = (a + H(b,c,d) + X[k] + 6ED9EBA1) <<< s, k in bit-reversed order.
        for i in [0, 2, 1, 3] {
            a = rotl(a &+ h(b, c, d) &+ x[i] &+ 0x6ed9_eba1, 3)
            d = rotl(d &+ h(a, b, c) &+ x[i + 8] &+ 0x6ed9_eba1, 9)
            c = rotl(c &+ h(d, a, b) &+ x[i + 4] &+ 0x6ed9_eba1, 11)
            b = rotl(b &+ h(c, d, a) &+ x[i + 12] &+ 0x6ed9_eba1, 15)
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
