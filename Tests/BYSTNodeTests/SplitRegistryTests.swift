import BYSTProto
import NIOCore
import NIOEmbedded
import Testing
@testable import BYSTNode

/// The split registry's pairing and its bounds on unpaired tokens (PROTOCOL.md §6.3), on an
/// embedded event loop whose clock the tests move.
@Suite struct SplitRegistryTests {
    final class Downstream: SplitDownstream {
        var received = ByteBuffer()
        var batches = 0
        var linkAuthenticated = false
        func deliverUpstream(_ bytes: ByteBuffer) { received.writeImmutableBuffer(bytes) }
        func upstreamBatchDone() { batches += 1 }
    }

    static let pairingTimeout: TimeAmount = .seconds(10)
    let loop = EmbeddedEventLoop()

    func registry(_ change: (inout SplitRegistry.Limits) -> Void = { _ in }) -> SplitRegistry {
        var limits = SplitRegistry.Limits()
        change(&limits)
        return SplitRegistry(eventLoop: loop, pairingTimeout: Self.pairingTimeout, limits: limits)
    }

    static func token(_ index: Int) -> String {
        Base64URL.encode((0..<16).map { UInt8(truncatingIfNeeded: index >> ($0 % 4 * 8)) &+ UInt8($0) })
    }

    static func ipv4(_ host: UInt8) -> HandshakeSource { HandshakeSource(ipv4: 0xC000_0200 | UInt32(host)) }

    static func ipv6(_ subnet: UInt8, _ host: UInt8) -> HandshakeSource? {
        HandshakeSource(addressBytes: [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, subnet, 0, 0, 0, 0, 0, 0, 0, host])
    }

    static func bytes(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: 0x42, count: count) }

    @Test func aSecondUnpairedTokenOnOneConnectionIsRefusedUntilTheFirstPairs() throws {
        let registry = registry()
        let connection = registry.newOrigin(source: Self.ipv4(1))
        try registry.beginUpstream(Self.token(1), sequence: 0, from: connection)
        #expect(throws: SplitRegistry.Refusal.connectionHoldsUnpaired) {
            try registry.beginUpstream(Self.token(2), sequence: 0, from: connection)
        }
        // Its own token goes on; another connection from the same address may add one.
        registry.finishUpstream(Self.token(1), sequence: 0, nil)
        try registry.beginUpstream(Self.token(1), sequence: 1, from: connection)
        try registry.beginUpstream(Self.token(3), sequence: 0, from: registry.newOrigin(source: Self.ipv4(1)))
        // Once its GET is there, the token is paired: the connection may start another.
        _ = try registry.attachDownstream(Self.token(1), Downstream())
        try registry.beginUpstream(Self.token(2), sequence: 0, from: connection)
        #expect(registry.unpairedCount == 2)
    }

    @Test func anExpiredTokenNoLongerCountsForItsConnection() throws {
        let registry = registry()
        let connection = registry.newOrigin(source: Self.ipv4(1))
        try registry.beginUpstream(Self.token(1), sequence: 0, from: connection)
        loop.advanceTime(by: Self.pairingTimeout)
        #expect(registry.unpairedCount == 0)
        try registry.beginUpstream(Self.token(2), sequence: 0, from: connection)
    }

    @Test func aSourceMayHoldOnlyItsShareOfUnpairedTokensAnIPv6SourceIsItsSlash64() throws {
        let registry = registry { $0.unpairedPerSource = 3 }
        let sameSlash64 = [Self.ipv6(1, 1), Self.ipv6(1, 2), Self.ipv6(1, 3), Self.ipv6(1, 4)]
        for (index, source) in sameSlash64.enumerated().prefix(3) {
            try registry.beginUpstream(Self.token(index), sequence: 0, from: registry.newOrigin(source: source))
        }
        let fourth = try #require(sameSlash64[3])
        #expect(throws: SplitRegistry.Refusal.sourceFull(fourth, cap: 3)) {
            try registry.beginUpstream(Self.token(3), sequence: 0, from: registry.newOrigin(source: fourth))
        }
        try registry.beginUpstream(Self.token(4), sequence: 0, from: registry.newOrigin(source: Self.ipv6(2, 1)))
        try registry.beginUpstream(Self.token(5), sequence: 0, from: registry.newOrigin(source: Self.ipv4(1)))
        // Pairing one of them makes room for the /64 again.
        _ = try registry.attachDownstream(Self.token(0), Downstream())
        try registry.beginUpstream(Self.token(3), sequence: 0, from: registry.newOrigin(source: fourth))
    }

    @Test func theNodeHoldsAtMostItsCapOfUnpairedTokensUntilTheyExpire() throws {
        let registry = registry { $0.unpaired = 4 }
        for index in 0..<4 {
            try registry.beginUpstream(Self.token(index), sequence: 0, from: registry.newOrigin(source: Self.ipv4(UInt8(index))))
        }
        #expect(throws: SplitRegistry.Refusal.full(cap: 4)) {
            try registry.beginUpstream(Self.token(9), sequence: 0, from: registry.newOrigin(source: Self.ipv4(9)))
        }
        // A GET first makes a paired token: not bounded here (its link is, as a pending handshake).
        _ = try registry.attachDownstream(Self.token(10), Downstream())
        loop.advanceTime(by: Self.pairingTimeout)
        #expect(registry.unpairedCount == 0)
        #expect(registry.count == 1)
        #expect(throws: SplitRegistry.Refusal.unknownToken) {
            try registry.beginUpstream(Self.token(0), sequence: 1, from: registry.newOrigin(source: Self.ipv4(0)))
        }
        try registry.beginUpstream(Self.token(9), sequence: 0, from: registry.newOrigin(source: Self.ipv4(9)))
    }

    @Test func waitingBytesAreCappedPerTokenAndInAll() throws {
        let registry = registry {
            $0.pendingBytesPerToken = 10
            $0.pendingBytes = 16
        }
        for index in 0..<3 {
            try registry.beginUpstream(Self.token(index), sequence: 0, from: registry.newOrigin(source: Self.ipv4(UInt8(index))))
        }
        try registry.deliver(Self.token(0), Self.bytes(10))
        #expect(throws: SplitRegistry.Refusal.tooMuchPending(cap: 10)) { try registry.deliver(Self.token(0), Self.bytes(1)) }
        try registry.deliver(Self.token(1), Self.bytes(6))
        #expect(throws: SplitRegistry.Refusal.pendingFull(cap: 16)) { try registry.deliver(Self.token(2), Self.bytes(1)) }
        #expect(registry.pendingBytes == 16)
        // Pairing hands the bytes to the link and frees them; a paired token's bytes never wait.
        let downstream = Downstream()
        #expect(try registry.attachDownstream(Self.token(0), downstream)?.readableBytes == 10)
        #expect(registry.pendingBytes == 6)
        try registry.deliver(Self.token(2), Self.bytes(10))
        try registry.deliver(Self.token(0), Self.bytes(100))
        #expect(downstream.received.readableBytes == 100)
        // Expiry frees what waited.
        loop.advanceTime(by: Self.pairingTimeout)
        #expect(registry.pendingBytes == 0)
    }

    @Test func waitingBytesAreCopiedInOrderNotSlicesOfTheirReadBuffers() throws {
        let registry = registry()
        let token = Self.token(1)
        try registry.beginUpstream(token, sequence: 0, from: registry.newOrigin(source: Self.ipv4(1)))
        var read = ByteBuffer(repeating: 0, count: 64 << 10)
        for value in UInt8(1)...5 {
            read.setInteger(value, at: Int(value))
            let slice = try #require(read.getSlice(at: Int(value), length: 1))
            try registry.deliver(token, slice)
        }
        let pending = try #require(try registry.attachDownstream(token, Downstream()))
        #expect(Array(pending.readableBytesView) == [1, 2, 3, 4, 5])
        #expect(pending.storageCapacity < 4096, "the waiting bytes keep a \(pending.storageCapacity)-byte buffer alive")
    }

    @Test func partsComeInOrderAndTheLinkSeesEachBodyAsABatch() throws {
        let registry = registry()
        let token = Self.token(1)
        let downstream = Downstream()
        _ = try registry.attachDownstream(token, downstream)
        #expect(throws: SplitRegistry.Refusal.downstreamTaken) { try registry.attachDownstream(token, Downstream()) }
        let connection = registry.newOrigin(source: Self.ipv4(1))
        #expect(throws: SplitRegistry.Refusal.outOfOrder(expected: 0, got: 1)) {
            try registry.beginUpstream(token, sequence: 1, from: connection)
        }
        try registry.beginUpstream(token, sequence: 0, from: connection)
        try registry.deliver(token, Self.bytes(3))
        registry.finishUpstream(token, sequence: 0, nil)
        #expect(downstream.batches == 1)
        #expect(!registry.isAuthenticated(token))
        downstream.linkAuthenticated = true
        #expect(registry.isAuthenticated(token))
        registry.downstreamClosed(token, downstream)
        #expect(registry.count == 0)
        #expect(throws: SplitRegistry.Refusal.unknownToken) { try registry.beginUpstream(token, sequence: 1, from: connection) }
    }

    /// One registry's key: each call digests as a connection of its own would.
    let digestRegistry = SplitRegistry(eventLoop: EmbeddedEventLoop(), pairingTimeout: .seconds(10))

    func hasher(_ sequence: UInt64) -> SplitPartHasher {
        SplitPartHasher(sequence: sequence, digest: digestRegistry.makePartDigest())
    }

    func digest(_ sequence: UInt64, _ bytes: ByteBuffer) throws -> SplitPartDigest {
        var hasher = hasher(sequence)
        hasher.update(bytes)
        return try #require(hasher.finish())
    }

    @Test func onlyTheLastFourPartsMayComeAgainAndOnlyOnceReceivedToTheirEnd() throws {
        #expect(SplitRegistry.rememberedParts == 4)
        let registry = registry()
        let token = Self.token(1)
        let downstream = Downstream()
        _ = try registry.attachDownstream(token, downstream)
        let first = registry.newOrigin(source: Self.ipv4(1))
        #expect(try registry.beginUpstream(token, sequence: 0, from: first) == .next)
        try registry.deliver(token, Self.bytes(3))
        // Still being received (or cut short): it cannot be compared yet.
        let second = registry.newOrigin(source: Self.ipv4(1))
        #expect(throws: SplitRegistry.Refusal.repeatOfUnfinished(0)) { try registry.beginUpstream(token, sequence: 0, from: second) }
        let part0 = try digest(0, Self.bytes(3))
        registry.finishUpstream(token, sequence: 0, part0)
        #expect(try registry.beginUpstream(token, sequence: 0, from: second) == .repeated(of: part0))
        #expect(try registry.beginUpstream(token, sequence: 0, from: second) == .repeated(of: part0))
        var parts = [part0]
        for sequence in UInt64(1)...3 {
            #expect(try registry.beginUpstream(token, sequence: sequence, from: second) == .next)
            parts.append(try digest(sequence, Self.bytes(Int(sequence))))
            registry.finishUpstream(token, sequence: sequence, parts[Int(sequence)])
        }
        // A client may have 4 POSTs unanswered: part 0 may still come again.
        #expect(try registry.beginUpstream(token, sequence: 0, from: first) == .repeated(of: part0))
        #expect(try registry.beginUpstream(token, sequence: 4, from: second) == .next)
        #expect(throws: SplitRegistry.Refusal.repeatOfUnfinished(4)) { try registry.beginUpstream(token, sequence: 4, from: first) }
        // Part 4 started: part 0 is no longer one of the last four.
        #expect(throws: SplitRegistry.Refusal.outOfOrder(expected: 5, got: 0)) { try registry.beginUpstream(token, sequence: 0, from: first) }
        #expect(try registry.beginUpstream(token, sequence: 1, from: first) == .repeated(of: parts[1]))
        // A part's digest, once kept, is not replaced by a later one for the same number (a
        // stale connection's).
        registry.finishUpstream(token, sequence: 1, try digest(1, Self.bytes(9)))
        #expect(try registry.beginUpstream(token, sequence: 1, from: first) == .repeated(of: parts[1]))
        // The next part may not start while part 4's body is still arriving: two bodies would
        // reach the link interleaved.
        #expect(throws: SplitRegistry.Refusal.previousUnfinished(4)) { try registry.beginUpstream(token, sequence: 5, from: first) }
        registry.finishUpstream(token, sequence: 4, nil)
        #expect(try registry.beginUpstream(token, sequence: 5, from: first) == .next)
        #expect(downstream.received.readableBytes == 3)
        #expect(SplitRegistry.Refusal.repeatDiffers(1).status.code == 409)
        #expect(SplitRegistry.Refusal.repeatOfUnfinished(1).status.code == 409)
    }

    @Test func aPartDigestCoversLengthAndBytes() throws {
        let same = try digest(4, ByteBuffer(bytes: [1, 2, 3]))
        var pieces = hasher(4)
        pieces.update(ByteBuffer(bytes: [1]))
        pieces.update(ByteBuffer(bytes: [2, 3]))
        #expect(pieces.finish() == same)
        #expect(try digest(4, ByteBuffer(bytes: [1, 2, 4])) != same)
        #expect(try digest(4, ByteBuffer(bytes: [1, 2, 3, 0])) != same)
        #expect(same.length == 3)
        // Another node's key: the same bytes do not give the same tag.
        var elsewhere = SplitPartHasher(sequence: 4, digest: registry().makePartDigest())
        elsewhere.update(ByteBuffer(bytes: [1, 2, 3]))
        #expect(elsewhere.finish() != same)
    }

    @Test func refusalsOfTheBoundsAreCountedAsLimits() {
        let bounds: [(SplitRegistry.Refusal, Int, ResourceLimit)] = [
            (.connectionHoldsUnpaired, 429, .splitUnpairedPerConnection),
            (.sourceFull(Self.ipv4(1), cap: 16), 429, .splitUnpairedPerSource),
            (.full(cap: 1024), 503, .splitUnpaired),
            (.tooMuchPending(cap: 65536), 413, .splitPendingBytes),
            (.pendingFull(cap: 1 << 24), 503, .splitPendingBytes),
        ]
        for (refusal, status, limit) in bounds {
            #expect(refusal.status.code == status, "\(refusal)")
            #expect(refusal.limit == limit, "\(refusal)")
        }
        #expect(SplitRegistry.Refusal.unknownToken.limit == nil)
    }

    @Test func anUpstreamConnectionSettlesOnceALinkItFedAuthenticates() {
        var settlement = SplitUpstreamSettlement()
        var authenticated: Set<String> = []
        settlement.fed("a")
        settlement.fed("b")
        #expect(!settlement.settle { authenticated.contains($0) })
        authenticated.insert("a")
        #expect(settlement.settle { authenticated.contains($0) })
        #expect(settlement.isSettled)
        #expect(!settlement.settle { authenticated.contains($0) }, "settled twice")
        // Only the last few tokens are remembered: a connection cannot grow its list.
        var crowded = SplitUpstreamSettlement()
        for index in 0...SplitUpstreamSettlement.rememberedTokens { crowded.fed("\(index)") }
        #expect(!crowded.settle { $0 == "0" })
        #expect(crowded.settle { $0 == "\(SplitUpstreamSettlement.rememberedTokens)" })
    }
}
