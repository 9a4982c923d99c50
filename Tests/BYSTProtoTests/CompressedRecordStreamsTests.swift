import NIOCore
import Testing
@testable import BYSTProto

/// CRIME/BREACH across streams: on a link that compresses, a record must never hold data of
/// two streams, or bytes an attacker sends on one stream would be compressed next to another
/// stream's secret and the record length would tell how well a guess matched.
struct CompressedRecordStreamsTests {
    /// The stream ids of the data frames in each record `a` sends on link 0.
    private func recordStreams(oneStream: Bool) throws -> [[UInt32]] {
        var pair = SessionPair(links: 1)
        var transfer = try pair.openTransfer(streams: 2) { index in
            Array(repeating: UInt8(ascii: index == 0 ? "s" : "a"), count: 3000)  // a "secret" and an "attacker" stream
        }
        pair.feed(&transfer)
        var records: [[UInt32]] = []
        for _ in 0..<16 {
            var out = ByteBuffer()
            var packetFrames = 0
            guard pair.a.writePayload(for: LinkID(0), maxBytes: pair.maxRecord, into: &out, packetFrames: &packetFrames,
                                      oneStream: oneStream) > 0 else { break }
            var ids: Set<UInt32> = []
            while let frame = try Frame.decode(from: &out) {
                if case .data(let id, _, _) = frame { ids.insert(id) }
            }
            records.append(ids.sorted())
        }
        return records
    }

    @Test func aCompressingLinkPutsOneStreamInARecord() throws {
        let records = try recordStreams(oneStream: true)
        #expect(records.contains { !$0.isEmpty })
        #expect(records.allSatisfy { $0.count <= 1 }, "records mix streams: \(records)")
        // Both streams still get through, in records of their own.
        #expect(Set(records.joined()).count == 2)
    }

    /// The attack's precondition, as it was before: without the rule both streams share a record.
    @Test func withoutTheRuleStreamsShareARecord() throws {
        let records = try recordStreams(oneStream: false)
        #expect(records.contains { $0.count == 2 })
    }
}
