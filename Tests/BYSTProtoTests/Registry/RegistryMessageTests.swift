import NIOCore
import Testing
@testable import BYSTProto

/// The `@registry` stream's messages (PROTOCOL.md §7): round trips at any chunking, and
/// hostile bytes give errors, never crashes.
@Suite struct RegistryMessageTests {
    static let samples: [RegistryMessage] = [
        .request(id: 1, .hello(leaseMilliseconds: 3000, relet: [.init(port: "hq", info: "byst://10.0.0.1:7000")])),
        .request(id: 2, .register(port: "hq", info: "byst://10.0.0.1:7000 http://10.0.0.1:8080/byst")),
        .request(id: 3, .unregister(port: "hq")),
        .request(id: 4, .query(port: "hq")),
        .request(id: 5, .queryNode("hub-a")),
        .request(id: 6, .watch(port: "hq")),
        .request(id: 7, .unwatch(port: "hq")),
        .request(id: 8, .send(port: "hq", body: "drain please")),
        .request(id: 9, .keepalive),
        .reply(id: 1, .welcome(leaseMilliseconds: 3000, closeGraceMilliseconds: 300, ports: ["hq", "ops"])),
        .reply(id: 2, .registered),
        .reply(id: 3, .done),
        .reply(id: 2, .taken(owner: "hub-b", info: "byst://10.0.0.2:7000")),
        .reply(id: 2, .retryLater(milliseconds: 4200)),
        .reply(id: 4, .owner(.init(node: "hub-a", info: "x"))),
        .reply(id: 4, .owner(nil)),
        .reply(id: 5, .ports(["hq"])),
        .reply(id: 6, .error(.limit, "too many")),
        .notice(.ownerChanged(port: "hq", owner: .init(node: "hub-b", info: "y"))),
        .notice(.ownerChanged(port: "hq", owner: nil)),
        .notice(.lost(port: "hq")),
        .notice(.message(from: "branch", port: "hq", body: "hello ✓")),
    ]

    @Test func everyMessageRoundTripsThroughAnyChunking() throws {
        var wire = ByteBuffer()
        for message in Self.samples { message.encode(into: &wire) }
        let bytes = Array(wire.readableBytesView)
        for chunk in [1, 3, 7, 64, bytes.count] {
            var decoder = RegistryMessageDecoder()
            var decoded: [RegistryMessage] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                decoder.feed(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
                while let message = try decoder.next() { decoded.append(message) }
            }
            #expect(decoded == Self.samples, "chunk \(chunk)")
        }
    }

    @Test func oversizedLengthIsRefusedBeforeBuffering() {
        var decoder = RegistryMessageDecoder()
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(RegistryMessage.maxBodyBytes + 1))
        decoder.feed(bytes)
        #expect(throws: RegistryWireError.tooLong(RegistryMessage.maxBodyBytes + 1)) { try decoder.next() }
    }

    @Test func hostileBodiesGiveErrors() {
        func body(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }
        #expect(throws: RegistryWireError.truncated) { try RegistryMessage.decode(body: body([0x02, 0, 0])) }
        #expect(throws: RegistryWireError.unknownKind(0x7E)) { try RegistryMessage.decode(body: body([0x7E, 0, 0, 0, 1])) }
        // register with a port string claiming 5 bytes but holding 2
        #expect(throws: RegistryWireError.truncated) { try RegistryMessage.decode(body: body([0x02, 0, 0, 0, 1, 0, 5, 0x68, 0x71])) }
        // a string that is not UTF-8
        #expect(throws: RegistryWireError.notUTF8) { try RegistryMessage.decode(body: body([0x04, 0, 0, 0, 1, 0, 2, 0xFF, 0xFE])) }
        // keepalive followed by junk
        #expect(throws: RegistryWireError.trailingBytes) { try RegistryMessage.decode(body: body([0x09, 0, 0, 0, 1, 0xAA])) }
        // random garbage never traps
        var generator = SplitMix64(seed: 7)
        for _ in 0..<5_000 {
            let count = Int(generator.next() % 40)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = try? RegistryMessage.decode(body: ByteBuffer(bytes: bytes))
        }
    }
}
