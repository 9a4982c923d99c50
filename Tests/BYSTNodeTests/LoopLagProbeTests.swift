import BYSTProto
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import BYSTNode

/// The accept gate's loop probe runs while connections arrive and sleeps when they stop.
/// Only stable states and "eventually" are asserted: a loaded machine may stretch any wait.
@Suite struct LoopLagProbeTests {
    static let source = HandshakeSource(addressBytes: [192, 0, 2, 1])

    @Test func theProbeRunsWhileConnectionsArriveAndSleepsWhenTheyStop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let gate = AcceptGate(limits: LimitsConfig(), metrics: NodeMetrics(), logger: Logger(label: "test"),
                              probeIdleAfter: 200_000_000)
        let probe = try await loop.submit { NIOLoopBound(gate.probeLoop(loop), eventLoop: loop) }.get()
        func runs() async throws -> Int { try await loop.submit { probe.value.runs }.get() }
        func running() async throws -> Bool { try await loop.submit { probe.value.isRunning }.get() }
        func eventually(_ what: Comment, _ condition: () async throws -> Bool) async throws {
            for _ in 0..<1000 where try await !condition() { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try await condition(), what)
        }

        // Asleep before any connection.
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await runs() == 0)
        #expect(try await !running())

        #expect(gate.admit(Self.source))
        try await eventually("woken by a connection") { try await runs() > 0 }
        // No connection for longer than the idle time: asleep, and it stays asleep.
        try await eventually("asleep once connections stopped") { try await !running() }
        let asleep = try await runs()
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await runs() == asleep)

        #expect(gate.admit(Self.source))
        try await eventually("woken again") { try await runs() > asleep }

        try await loop.submit { probe.value.cancel() }.get()
        try await group.shutdownGracefully()
    }
}
