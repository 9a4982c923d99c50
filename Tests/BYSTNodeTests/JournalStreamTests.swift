import Glibc
import Logging
import Testing
@testable import BYSTNode

/// Under systemd, log lines carry their syslog priority so `journalctl -p warning` filters them.
@Suite struct JournalStreamTests {
    @Test func standardErrorIsTheJournalOnlyWhenItsDeviceAndInodeMatch() {
        var info = stat()
        #expect(fstat(STDERR_FILENO, &info) == 0)
        #expect(JournalStream.isStandardError(environment: "\(info.st_dev):\(info.st_ino)"))
        #expect(!JournalStream.isStandardError(environment: "\(info.st_dev):\(UInt64(info.st_ino) &+ 1)"))
        #expect(!JournalStream.isStandardError(environment: nil))
        for malformed in ["", ":", "1", "1:2:3", "a:b", "-1:2", " 1:2"] {
            #expect(!JournalStream.isStandardError(environment: malformed), "\(malformed)")
        }
    }

    @Test func prioritiesFollowSyslogSeverities() {
        let levels: [(Logger.Level, Int)] = [(.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2)]
        for (level, priority) in levels { #expect(JournalStream.priority(level) == priority) }
    }

    @Test func aJournalLineHasThePriorityAndNoTimestampAndStaysOneLine() {
        let event = LogEvent(level: .warning, message: "link down\nforged line", metadata: ["peer": "hub", "link": "2"],
                             source: "BYSTNode", file: "", function: "", line: 0)
        let line = TextLogHandler.journalLine(TextLogHandler.escaping(event, metadata: ["node": "branch"]), label: "byst")
        #expect(line == #"<4>warning byst: link=2 node=branch peer=hub [BYSTNode] link down\nforged line"#)
    }
}
