import Foundation
import Testing
@testable import BYSTNode
import BYSTProto

/// `compression` per peer and `compression_level` per node (docs/OPERATIONS.md, "Compression").
@Suite struct CompressionConfigTests {
    static let file = "/etc/byst/hub.toml"
    static let node = "[node]\nname = \"hub\"\n"
    static let peer = "[[peer]]\nname = \"branch-1\"\nkey = \"branch-1\"\n"

    func parse(_ text: String) throws(ConfigError) -> NodeConfig { try NodeConfig.parse(text, file: Self.file) }

    func error(_ text: String) -> String? { NodeConfig.parseError(text, file: Self.file) }

    /// Off by default: compressing next to secrets leaks them through lengths (CRIME/BREACH).
    @Test func defaultsCompressNothingAtLevelThree() throws {
        let config = try parse(Self.node + Self.peer)
        #expect(config.compressionLevel == 3)
        #expect(config.peers.first?.compression == .off)
        #expect(NodeConfig(name: "x").compressionLevel == NodeConfig.defaultCompressionLevel)
        #expect(PeerConfig(name: "p", key: "k").compression == .off)
    }

    @Test func keysAreRead() throws {
        let config = try parse(Self.node + "compression_level = 19\n" + Self.peer + "compression = \"off\"\n"
                               + "[[peer]]\nname = \"b2\"\nkey = \"b2\"\ncompression = \"all\"\n"
                               + "[[peer]]\nname = \"b3\"\nkey = \"b3\"\ncompression = \"streams\"\n")
        #expect(config.compressionLevel == 19)
        #expect(config.peers.map(\.compression) == [.off, .all, .streams])
        #expect(try parse(Self.node + "compression_level = 1\n").compressionLevel == 1)
    }

    @Test func badValuesGiveOnePreciseLine() {
        let f = Self.file
        let cases: [(String, String)] = [
            (Self.node + "compression_level = 0\n", #"\#(f):3: [node]: compression_level must be an integer 1…19, got 0"#),
            (Self.node + "compression_level = 20\n", #"\#(f):3: [node]: compression_level must be an integer 1…19, got 20"#),
            (Self.node + "compression_level = \"3\"\n",
             #"\#(f):3: [node]: compression_level must be an integer 1…19, got string "3""#),
            (Self.node + Self.peer + "compression = \"zstd\"\n",
             #"\#(f):6: [[peer]] "branch-1": compression must be one of "off", "streams", "all", got "zstd""#),
            (Self.node + Self.peer + "compression = true\n",
             #"\#(f):6: [[peer]] "branch-1": compression must be one of "off", "streams", "all", got boolean true"#),
        ]
        for (text, expected) in cases { #expect(error(text) == expected) }
    }
}
