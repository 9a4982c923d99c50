import Testing
@testable import BYSTNode
import BYSTProto

/// `[[peer]] packet_striping` (docs/OPERATIONS.md, "Packet striping").
@Suite struct PacketStripingConfigTests {
    static let file = "/etc/byst/site.toml"
    static let node = "[node]\nname = \"a\"\n"
    static let peer = "[[peer]]\nname = \"b\"\nkey = \"b\"\n"

    @Test func offByDefault() throws {
        #expect(try NodeConfig.parse(Self.node + Self.peer, file: Self.file).peers.first?.packetStriping == false)
        #expect(PeerConfig(name: "p", key: "k").packetStriping == false)
    }

    @Test func isReadPerPeer() throws {
        let config = try NodeConfig.parse(Self.node + Self.peer + "packet_striping = true\n"
                                          + "[[peer]]\nname = \"c\"\nkey = \"c\"\npacket_striping = false\n", file: Self.file)
        #expect(config.peers.map(\.packetStriping) == [true, false])
    }

    @Test func aValueThatIsNotABooleanGivesOnePreciseLine() {
        let error = NodeConfig.parseError(Self.node + Self.peer + "packet_striping = \"yes\"\n", file: Self.file)
        #expect(error == #"\#(Self.file):6: [[peer]] "b": packet_striping must be true or false, got string "yes""#)
    }
}
