import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

@Suite struct KeyStoreTests {
    @Test func saveLoadRoundTripWithMode0600() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/nested/keys"
            var store = try KeyStore.load(path: path)
            #expect(store.entries.isEmpty)
            let hq = try PreSharedKey.generate()
            try store.add(name: "hq", key: hq)
            try store.add(name: "branch-1.example", key: try .generate())
            try store.save()
            #expect(try fileMode(path) == 0o600)
            #expect(try fileMode(dir + "/nested") == 0o700)
            let loaded = try KeyStore.load(path: path)
            #expect(loaded.entries.map(\.name) == ["hq", "branch-1.example"])
            #expect(loaded.entry(named: "hq")?.key.secret.constantTimeEquals(hq.secret) == true)
            #expect(loaded.key(for: hq.id)?.id == hq.id)
            // No temporary files are left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/nested") == ["keys"])
        }
    }

    @Test func refusesGroupOrWorldReadableStore() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/keys"
            var store = try KeyStore.load(path: path)
            try store.add(name: "hq", key: try .generate())
            try store.save()
            for mode in [0o640, 0o604, 0o644] {
                chmod(path, mode_t(mode))
                #expect(throws: KeyStore.Failure.self) { try KeyStore.load(path: path) }
            }
            chmod(path, 0o600)
            #expect(try KeyStore.load(path: path).entries.count == 1)
        }
    }

    @Test func malformedStoresNameTheLine() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/keys"
            let good = Base64URL.encode(try PreSharedKey.generate().secret.revealedBytes, urlSafe: false, padded: true)
            let cases: [(String, Int)] = [
                ("# c\nhq \(good)\nbroken\n", 3),
                ("hq c2hvcnQ=\n", 1),
                ("\n\nhq \(good)\nhq \(Base64URL.encode(try PreSharedKey.generate().secret.revealedBytes))\n", 4),
                ("zero \(Base64URL.encode([UInt8](repeating: 0, count: 32)))\n", 1),
                ("hq \(good) extra\n", 1),
            ]
            for (text, line) in cases {
                try AtomicFile.write(Array(text.utf8), to: path)
                do {
                    _ = try KeyStore.load(path: path)
                    Issue.record("accepted: \(text)")
                } catch {
                    guard case KeyStore.Failure.malformed(_, let reported, _)? = error as? KeyStore.Failure else { Issue.record("\(error)"); continue }
                    #expect(reported == line, "\(text)")
                }
            }
        }
    }

    @Test func namesAndDuplicatesAreChecked() throws {
        var store = try KeyStore.load(path: "/nonexistent-byst/keys")
        let key = try PreSharedKey.generate()
        try store.add(name: "a", key: key)
        #expect(throws: KeyStore.Failure.self) { try store.add(name: "a", key: try .generate()) }
        #expect(throws: KeyStore.Failure.self) { try store.add(name: "b", key: key) }
        for bad in ["", "-x", "a b", "x/y", String(repeating: "n", count: 64), "ü"] {
            #expect(throws: KeyStore.Failure.self) { try store.add(name: bad, key: try .generate()) }
        }
        #expect(throws: KeyStore.Failure.self) { try store.remove(name: "zz") }
        try store.remove(name: "a")
        #expect(store.entries.isEmpty)
    }

    @Test func exportStringsRoundTripAndRejectDamage() throws {
        let key = try PreSharedKey.generate()
        let text = KeyExport.encode(key)
        #expect(text.hasPrefix("bystk1_"))
        #expect(try KeyExport.decode("  \(text)\n").id == key.id)
        #expect(throws: KeyExport.Problem.missingPrefix) { try KeyExport.decode(String(text.dropFirst())) }
        #expect(throws: KeyExport.Problem.self) { try KeyExport.decode(String(text.dropLast(2))) }
        #expect(throws: KeyExport.Problem.notBase64) { try KeyExport.decode(text + "!") }
        var chars = Array(text)
        chars[20] = chars[20] == "A" ? "B" : "A"
        #expect(throws: KeyExport.Problem.checksumMismatch) { try KeyExport.decode(String(chars)) }
        let zeros = [UInt8](repeating: 0, count: 32)
        let weak = KeyExport.prefix + Base64URL.encode(zeros + KeyExport.checksum(zeros))
        #expect(throws: KeyExport.Problem.weakKey) { try KeyExport.decode(weak) }
    }

    @Test func base64MatchesRFC4648() {
        let cases = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in cases {
            #expect(Base64URL.encode(Array(plain.utf8), urlSafe: false, padded: true) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64URL.decode("Z") == nil)
        #expect(Base64URL.decode("Zm9v*") == nil)
        #expect(Base64URL.decode("Zm9vY") == nil)
        #expect(Base64URL.decode("Zm9v\u{e9}") == nil)
        // Both alphabets; every byte value; any collection, contiguous or not.
        let all = (0...255).map(UInt8.init)
        for text in [Base64URL.encode(all), Base64URL.encode(all, urlSafe: false, padded: true)] {
            #expect(Base64URL.decode(text) == all)
            #expect(Base64URL.decode(bytes: text.utf8.lazy.map { $0 }) == all)
        }
        #expect(Base64URL.decode("-_-_") == Base64URL.decode("+/+/"))
    }
}
