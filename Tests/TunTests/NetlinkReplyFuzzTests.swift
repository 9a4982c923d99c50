import Testing
@testable import Tun

/// Kernel replies found by the `netlink` fuzz target (scripts/fuzz.sh) that were misread or
/// trapped: each must come out as EPROTO, the answer for a malformed reply.
@Suite struct NetlinkReplyFuzzTests {
    /// NLMSG_ERROR: length 36, type 2, flags 0, sequence 9, port 0, then the error code and
    /// the request's header (16 bytes).
    static func errorReply(code: [UInt8]) -> [UInt8] {
        [0x24, 0, 0, 0, 0x02, 0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0] + code
            + [0x10, 0, 0, 0, 0x10, 0, 0, 0, 0x09, 0xFA, 0, 0, 0, 0, 0, 0]
    }

    /// The fuzzer's input (after its 4-byte sequence): code +8388608 came back as errno -8388608.
    @Test func positiveErrorCodeIsMalformed() {
        let reply = Self.errorReply(code: [0x00, 0x00, 0x80, 0x00])
        #expect(NetlinkMessage.parseAck(reply, sequence: 9) == NetlinkMessage.EPROTOValue)
    }

    /// Int32.min as the code: negating it to an errno trapped.
    @Test func minimumErrorCodeIsMalformed() {
        let reply = Self.errorReply(code: [0x00, 0x00, 0x00, 0x80])
        #expect(NetlinkMessage.parseAck(reply, sequence: 9) == NetlinkMessage.EPROTOValue)
    }

    /// Ordinary answers are unchanged: 0 is an ack, -17 is EEXIST.
    @Test func ackAndErrnoStillParse() {
        #expect(NetlinkMessage.parseAck(Self.errorReply(code: [0, 0, 0, 0]), sequence: 9) == nil)
        #expect(NetlinkMessage.parseAck(Self.errorReply(code: [0xEF, 0xFF, 0xFF, 0xFF]), sequence: 9) == 17)
    }
}
