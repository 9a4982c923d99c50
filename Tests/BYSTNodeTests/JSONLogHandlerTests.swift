import Foundation
import Logging
import Testing
@testable import BYSTNode

/// `byst up --log-format json`: one JSON object per line, escaped so no message can break
/// out of its line or its string.
@Suite struct JSONLogHandlerTests {
    func decode(_ line: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func oneObjectWithTheFieldsInOrder() throws {
        let line = JSONLogHandler.line(
            time: "2025-03-01T12:00:00.123Z", level: .info, label: "byst", message: "link up",
            metadata: ["peer": "hub", "link": .stringConvertible(3)])
        #expect(line == #"{"time":"2025-03-01T12:00:00.123Z","level":"info","label":"byst","message":"link up","metadata":{"link":"3","peer":"hub"}}"#)
        let object = try decode(line)
        #expect(object["level"] as? String == "info")
        #expect((object["metadata"] as? [String: Any])?["peer"] as? String == "hub")
    }

    @Test func noMetadataNoField() throws {
        let line = JSONLogHandler.line(time: "t", level: .warning, label: "byst", message: "m", metadata: [:])
        #expect(line == #"{"time":"t","level":"warning","label":"byst","message":"m"}"#)
    }

    @Test func everythingHostileIsEscapedAndRoundTrips() throws {
        let hostile = "quote \" backslash \\ newline \n return \r tab \t nul \u{00} bell \u{07} del \u{7F} "
            + "ls \u{2028} ps \u{2029} é ✓ 🛰 \"}{\"level\":\"critical\""
        let line = JSONLogHandler.line(
            time: "2025-03-01T12:00:00.123Z", level: .error, label: "by\"st", message: hostile,
            metadata: [
                "key \"with\" quotes\n": .string(hostile),
                "nested": .dictionary(["list": .array(["a", .string(hostile), .dictionary([:])])]),
            ],
            error: "socket error: \(hostile)")
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{2028}") && !line.contains("\u{2029}"))
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(line.contains(#"\u0000"#) && line.contains(#"\u0007"#) && line.contains(#"\u007f"#) && line.contains(#"\u2028"#))
        #expect(line.contains(#"\n"#) && line.contains(#"\t"#) && line.contains(#"\\"#) && line.contains(#"\""#))
        let object = try decode(line)
        #expect(object["message"] as? String == hostile)
        #expect(object["label"] as? String == "by\"st")
        #expect(object["level"] as? String == "error")
        #expect(object["error"] as? String == "socket error: \(hostile)")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["key \"with\" quotes\n"] as? String == hostile)
        let list = try #require((metadata["nested"] as? [String: Any])?["list"] as? [Any])
        #expect(list.count == 3)
        #expect(list[1] as? String == hostile)
        #expect((list[2] as? [String: Any])?.isEmpty == true)
    }

    @Test func timesAreRFC3339UTCWithMilliseconds() {
        #expect(JSONLogHandler.rfc3339(nanosecondsSinceEpoch: 0) == "1970-01-01T00:00:00.000Z")
        #expect(JSONLogHandler.rfc3339(nanosecondsSinceEpoch: 1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123Z")
        #expect(JSONLogHandler.rfc3339(nanosecondsSinceEpoch: 951_782_400_007_000_000) == "2000-02-29T00:00:00.007Z")
        let pattern = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/#
        #expect(JSONLogHandler.rfc3339(nanosecondsSinceEpoch: 4_102_444_799_999_999_999).wholeMatch(of: pattern) != nil)
    }

    @Test func handlerMergesMetadataAndFiltersByLevel() {
        var handler = JSONLogHandler(label: "byst")
        handler.logLevel = .notice
        handler[metadataKey: "node"] = "hub"
        #expect(handler[metadataKey: "node"] == "hub")
        var logger = Logger(label: "byst") { _ in handler }
        #expect(logger.logLevel == .notice)
        logger[metadataKey: "peer"] = "branch-1"
        #expect(logger[metadataKey: "node"] == "hub")
        #expect(logger[metadataKey: "peer"] == "branch-1")
    }
}
