import BYSTProto
import NIOCore
import Testing

/// Found by the `registry` fuzz target (scripts/fuzz.sh): a client could own more ports than
/// `portsPerClient` by saying hello again with relet claims for ports it did not own yet
/// (the cap was checked against the claims alone). The fuzzer's program, byte for byte:
/// `mode ‖ split ‖` one registry stream from client "branch-0", with a cap of 4 ports (it owns 4 when it says hello again).
@Suite struct RegistryFuzzRegressionTests {
    static let input = Hex.decode([
        "00960000001e010000000100001388000100026468000d30362e302e302e313a353433320000000a0400000003000377",
        "653200000024020000000200037767620018627973130000002e30332f322e3131332e31303a37301a00000000240200",
        "00000200037765620018627973130000002e30332f322e3131332e31303a373030300000000a04000000030003776562",
        "0000000f050001000400086272616e63682d30000000090600000005000264620000000b020000000100022029000000",
        "00001e010000000100001388000100026462000d30352e302e302e323a35343332000000240200000002000377656200",
        "18627973743a2f302e30332f322e3131332e31303a373030300000000a03f600000300037765620000000f050000000b",
        "0200000004000903000000090003776562",
    ].joined())

    @Test func secondHelloCannotReletPastThePortCap() throws {
        let bytes = try #require(Self.input)
        #expect(bytes.count == 305)
        let limits = RegistryService.Limits(portsPerClient: 4, watchesPerClient: 4)
        var now: Nanoseconds = 1_000_000_000
        var service = RegistryService(configuration: .init(lease: .seconds(5), grace: .zero), now: now, limits: limits,
                                      permissions: .unrestricted([RegistryClientID("branch-0")]))
        let client = RegistryClientID("branch-0")
        var decoder = RegistryMessageDecoder()
        decoder.feed(ByteBuffer(bytes: bytes.dropFirst(2)))
        var hellos: [(reply: RegistryReply, owned: Int)] = []
        // The stream ends in a malformed message, where the server would close it.
        while let message = try? decoder.next() {
            guard case .request(let id, let request) = message else { continue }
            now += UInt64(id % 4096) * 1_000_000
            let reply = service.handle(request, from: client, now: now)
            if case .hello = request { hellos.append((reply, service.registry.ports(of: client).count)) }
            #expect(service.registry.ports(of: client).count <= limits.portsPerClient)
            _ = service.notices(now: now)
        }
        #expect(hellos.map(\.owned) == [1, 4])
        #expect(hellos.last?.reply == .error(.limit, "more than 4 ports"))
    }

    /// A reconnecting client that relets what it owns (the normal case) is not refused.
    @Test func reletOfOwnedPortsStaysWithinTheCap() {
        let limits = RegistryService.Limits(portsPerClient: 2, watchesPerClient: 2)
        var service = RegistryService(configuration: .init(lease: .seconds(5), grace: .zero), now: 0, limits: limits,
                                      permissions: .unrestricted([RegistryClientID("gw")]))
        let client = RegistryClientID("gw")
        let claims = [RegistryPortClaim(port: "a", info: "1"), RegistryPortClaim(port: "b", info: "2")]
        #expect(service.handle(.hello(leaseMilliseconds: 5000, relet: claims), from: client, now: 1) == .welcome(leaseMilliseconds: 5000, closeGraceMilliseconds: 300, ports: ["a", "b"]))
        service.streamClosed(client)
        #expect(service.handle(.hello(leaseMilliseconds: 5000, relet: claims), from: client, now: 2) == .welcome(leaseMilliseconds: 5000, closeGraceMilliseconds: 300, ports: ["a", "b"]))
        #expect(service.handle(.hello(leaseMilliseconds: 5000, relet: [RegistryPortClaim(port: "c", info: "3")]), from: client, now: 3)
            == .error(.limit, "more than 2 ports"))
    }
}
