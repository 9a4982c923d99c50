import BYSTProto
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import BYSTNode

/// The accept gate's loop probe runs while connections arrive and sleeps when they stop.
@Suite struct LoopLagProbeTests {
    static let source = HandshakeSource(addressBytes: [192, 0, 2, 1])

    @Test func theProbeWakesOnAConnectionSleepsWhenTheyStopAndCountsNoLatenessForItsSleep() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let gate = AcceptGate(limits: LimitsConfig(), metrics: NodeMetrics(), logger: Logger(label: "test"),
                              probeIdleAfter: 300_000_000)
        let probe = try await loop.submit { NIOLoopBound(gate.probeLoop(loop), eventLoop: loop) }.get()
        func running() async throws -> Bool { try await loop.submit { probe.value.isRunning }.get() }

        #expect(try await !running(), "asleep before any connection")
        #expect(gate.admit(Self.source))
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await running(), "woken by the connection")
        // No connection for longer than the idle time (and two probe periods): asleep again.
        try await Task.sleep(for: .milliseconds(450))
        #expect(try await !running(), "asleep once connections stopped")

        // Woken again after a second asleep: the sleep is not lateness, so a stranger is
        // still admitted (a loop over 20 ms late turns strangers away as overloaded).
        try await Task.sleep(for: .milliseconds(700))
        #expect(gate.admit(Self.source))
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await running())
        #expect(gate.admit(HandshakeSource(addressBytes: [198, 51, 100, 7])), "a stranger admitted after the wake-up")
        #expect(gate.refused == 0)

        try await loop.submit { probe.value.cancel() }.get()
        try await group.shutdownGracefully()
    }
}
