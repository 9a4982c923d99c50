import Foundation
import Glibc
import Testing
@testable import BYSTNode

/// Plain links write records straight to their socket while NIO holds nothing for it, and
/// through NIO behind whatever it holds (LinkSocket.swift, LinkHandler.write).
@Suite(.serialized) struct DirectWriteTests {
    let capture = LogCapture()

    /// A connected pair of stream sockets: (ours, the peer's).
    private func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw BlockingSocket.Failure(what: "socketpair", code: errno)
        }
        return (fds[0], fds[1])
    }

    private func send(_ socket: LinkSocket, _ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { socket.sendNow($0) }
    }

    @Test func theDuplicateOutlivesTheChannelsDescriptorAndClosingItEndsTheConnection() throws {
        let (ours, peer) = try socketPair()
        defer { Glibc.close(peer) }
        let socket = try #require(LinkSocket(duplicating: ours))
        // NIO closes its descriptor; the number may be reused, the duplicate still is the socket.
        Glibc.close(ours)
        #expect(send(socket, [1, 2, 3]) == 3)
        var received = [UInt8](repeating: 0, count: 8)
        #expect(recv(peer, &received, 8, 0) == 3)
        #expect(received.prefix(3) == [1, 2, 3])
        socket.close()
        #expect(!socket.isOpen)
        #expect(recv(peer, &received, 8, 0) == 0, "the peer sees the end of the stream")
        #expect(send(socket, [4]) == 0, "a closed LinkSocket sends nothing")
    }

    @Test func aFullSocketTakesPartOfTheBytesThenNoneWithoutBlocking() throws {
        let (ours, peer) = try socketPair()
        defer {
            Glibc.close(ours)
            Glibc.close(peer)
        }
        let socket = try #require(LinkSocket(duplicating: ours))
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        var total = 0
        var last = -1
        // The peer reads nothing: the buffer fills within a few MiB.
        for _ in 0..<64 where last != 0 {
            last = send(socket, chunk)
            total += last
        }
        #expect(last == 0, "the socket never reported full")
        #expect(total > 0 && total < 64 << 20)
    }

    @Test func aPeerThatWentAwayMakesTheSendReportNothingAndRaisesNoSignal() throws {
        let (ours, peer) = try socketPair()
        defer { Glibc.close(ours) }
        let socket = try #require(LinkSocket(duplicating: ours))
        Glibc.close(peer)
        // Without MSG_NOSIGNAL this would end the test process with SIGPIPE.
        #expect(send(socket, [UInt8](repeating: 1, count: 4096)) == 0)
        #expect(send(socket, [UInt8](repeating: 1, count: 4096)) == 0)
    }

    /// Direct bytes and NIO's bytes and their order, end to end: a relay slower than the branch
    /// (a small receive buffer) lets the branch's socket fill again and again, so records
    /// alternate between the two paths; every stream's SHA-256 must still match, and the link
    /// must stay up.
    @Test func recordsAlternatingBetweenTheSocketAndNIOArriveInOrder() async throws {
        let bed = try TestBed()
        defer { bed.close() }
        let hubPort = try BlockingSocket.freePort()
        let forwardPort = try BlockingSocket.freePort()
        let hub = try await TestCluster.start(TestCluster.hubConfig(bed.dir, port: hubPort, targets: [bed.digest.port]),
                                              directory: bed.dir, name: "hub", keys: bed.hubKeys, capture: capture)
        let relay = try await ChaosRelay.start(targetPort: Int(hubPort), receiveBuffer: 32 * 1024)
        let branch = try await TestCluster.start(
            TestCluster.branchConfig(bed.dir, hubPort: relay.port, links: 1, forwards: [(forwardPort, bed.digest.port)]),
            directory: bed.dir, name: "branch", keys: bed.branchKeys, capture: capture)
        let linkUp = try await TestCluster.waitUntil(seconds: 10) {
            try await branch.node.status().peers.first?.sessions.first?.links.count == 1
        }
        #expect(linkUp)

        // 12 streams' windows (1 MiB each) hold more than the kernel's largest send buffer (4 MiB).
        let transfers = (0..<12).map { index in
            Task { try await onThread { try sendThroughForward(port: forwardPort, count: 4 << 20, seed: UInt64(index + 11)) } }
        }
        for (index, transfer) in transfers.enumerated() {
            let (sent, received) = try await transfer.value
            #expect(sent == received, "stream \(index): SHA-256 differs")
        }
        let branchBytes = try await branch.node.withNode { node in
            node.peers.first?.outgoing?.links.values.map { [$0.wireBytesOut, $0.directBytesOut] }.first ?? []
        }
        let hubDirect = try await hub.node.withNode { node in
            node.peers.first?.incoming.values.flatMap(\.links.values).map(\.directBytesOut).reduce(0, +) ?? 0
        }
        #expect(branchBytes.count == 2)
        if branchBytes.count == 2 {
            let (total, direct) = (branchBytes[0], branchBytes[1])
            #expect(total > 48 << 20)
            #expect(direct > 0, "no record went straight to the socket")
            #expect(direct < total, "no record went through NIO: the socket never filled")
        }
        #expect(hubDirect > 0, "the accepted link wrote nothing directly")
        #expect(try await branch.node.status().peers.first?.reconnects == 0)
        try await branch.node.shutdown()
        try await relay.stop()
        try await hub.node.shutdown()
    }
}
