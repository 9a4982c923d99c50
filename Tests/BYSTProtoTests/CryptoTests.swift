import Testing
@testable import BYSTProto

@Suite struct CryptoTests {
    func hex(_ s: String) -> [UInt8] { Hex.decode(s) ?? [] }

    @Test func sha256KnownAnswer() throws {
        #expect(Hex.encode(try HashFunction.sha256.hash(Array("abc".utf8)))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func hmacSHA256RFC4231Case2() throws {
        let mac = try HashFunction.sha256.hmac(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        #expect(Hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func hkdfRFC5869Case1() throws {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt = hex("000102030405060708090a0b0c")
        let info = hex("f0f1f2f3f4f5f6f7f8f9")
        let okm = try ikm.withUnsafeBytes { i in
            try salt.withUnsafeBytes { s in
                try info.withUnsafeBytes { f in try HashFunction.sha256.hkdf(salt: s, inputKeyMaterial: i, info: f, length: 42) }
            }
        }
        #expect(Hex.encode(okm.revealedBytes)
            == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test func x25519RFC7748Section6_1() throws {
        let alice = try X25519.PrivateKey(rawRepresentation: hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519.PrivateKey(rawRepresentation: hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(Hex.encode(alice.publicKey.bytes) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        let shared = try alice.sharedSecret(with: bob.publicKey)
        #expect(Hex.encode(shared.revealedBytes) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(try bob.sharedSecret(with: alice.publicKey).constantTimeEquals(shared))
    }

    @Test func x25519RejectsLowOrderPoint() throws {
        let mine = try X25519.PrivateKey.generate()
        let zeroPoint = try X25519.PublicKey(bytes: [UInt8](repeating: 0, count: 32))
        #expect(throws: CryptoError.invalidPublicKey) { try mine.sharedSecret(with: zeroPoint) }
        #expect(throws: CryptoError.invalidKeyLength(31)) { try X25519.PublicKey(bytes: [UInt8](repeating: 9, count: 31)) }
    }

    @Test(arguments: AEADAlgorithm.allCases)
    func aeadRoundTripAndTamper(algorithm: AEADAlgorithm) throws {
        let key = try AEADKey(algorithm: algorithm, key: .random(count: 32))
        let original = Array("attack at dawn".utf8)
        var text = original
        var tag = [UInt8](repeating: 0, count: 16)
        let ad = Array("header".utf8)
        try ad.withUnsafeBytes { a in
            try text.withUnsafeMutableBytes { t in try tag.withUnsafeMutableBytes { try key.seal(nonce: 7, ad: a, text: t, tag: $0) } }
        }
        #expect(text != original)
        func open(_ text: [UInt8], nonce: UInt64 = 7, ad: [UInt8] = Array("header".utf8), tag: [UInt8]) throws -> [UInt8] {
            var copy = text
            try ad.withUnsafeBytes { a in
                try copy.withUnsafeMutableBytes { t in try tag.withUnsafeBytes { try key.open(nonce: nonce, ad: a, text: t, tag: $0) } }
            }
            return copy
        }
        #expect(try open(text, tag: tag) == original)
        #expect(throws: CryptoError.authenticationFailed) { try open(text, nonce: 8, tag: tag) }
        #expect(throws: CryptoError.authenticationFailed) { try open(text, ad: [1], tag: tag) }
        var badTag = tag
        badTag[0] ^= 1
        #expect(throws: CryptoError.authenticationFailed) { try open(text, tag: badTag) }
        var badText = text
        badText[3] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) { try open(badText, tag: tag) }
    }

    /// GMAC under key 00…0f and a zero nonce, over 1,000 bytes 0, 1, … 255, 0, … (computed with
    /// Python's `cryptography`: AESGCM(key).encrypt(bytes(12), b"", data)), fed in uneven
    /// pieces; the same bytes give the same tag again, one byte more or changed does not.
    @Test func keyedDigestIsGMACAndComparesInputsWhateverTheirPieces() throws {
        let key = SecretBytes(Array(0..<16).map(UInt8.init))
        let data = (0..<1000).map { UInt8($0 % 256) }
        let digest = try KeyedDigest(key: key)
        func tag(_ pieces: [ArraySlice<UInt8>]) throws -> KeyedDigest.Tag {
            try digest.begin()
            for piece in pieces { try piece.withUnsafeBytes { bytes in try digest.update(bytes) } }
            return try digest.finish()
        }
        let whole = try tag([data[...]])
        let expected = hex("2fe7cdf57efe549e9de7a21664061fb4")
        let expectedTag = KeyedDigest.Tag(high: expected[0..<8].reduce(0) { $0 << 8 | UInt64($1) },
                                          low: expected[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
        #expect(whole == expectedTag)
        #expect(try tag([data[0..<1], data[1..<17], data[17..<500], data[500...]]) == whole)
        var changed = data
        changed[999] ^= 1
        #expect(try tag([changed[...]]) != whole)
        #expect(try tag([data[...], [0][...]]) != whole)
        // Another key: other tags (what one node keeps means nothing to another).
        let other = try KeyedDigest(key: SecretBytes.random(count: KeyedDigest.keySize))
        try other.begin()
        try data.withUnsafeBytes { bytes in try other.update(bytes) }
        #expect(try other.finish() != whole)
        #expect(throws: CryptoError.self) { try KeyedDigest(key: SecretBytes([1, 2, 3])) }
    }

    @Test func secretsCompareInConstantTimeAndRandomDiffers() throws {
        let a = try SecretBytes.random(count: 32)
        let b = try SecretBytes.random(count: 32)
        #expect(!a.constantTimeEquals(b))
        #expect(a.constantTimeEquals(SecretBytes(a.revealedBytes)))
        #expect(!a.constantTimeEquals(SecretBytes(a.revealedBytes.prefix(31))))
    }

    @Test func zstdRoundTripRefusesIncompressibleAndBombs() throws {
        let text = Array(String(repeating: "branch office to headquarters ", count: 200).utf8)
        let compressed = try #require(text.withUnsafeBytes { Zstd.compress($0) })
        #expect(compressed.count < text.count / 10)
        #expect(try compressed.withUnsafeBytes { try Zstd.decompress($0, limit: 65536) } == text)
        // A frame that expands beyond the limit is an error, not an allocation.
        #expect(throws: Zstd.Failure.exceedsLimit(1024)) { try compressed.withUnsafeBytes { try Zstd.decompress($0, limit: 1024) } }
        let random = try SecureRandom.bytes(4096)
        #expect(random.withUnsafeBytes { Zstd.compress($0) } == nil)
        #expect(throws: (any Error).self) { try random.withUnsafeBytes { try Zstd.decompress($0, limit: 65536) } }
    }
}
