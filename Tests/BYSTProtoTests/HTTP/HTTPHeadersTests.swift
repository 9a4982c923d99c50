import Testing
@testable import BYSTProto

@Suite struct HTTPHeadersTests {
    let headers = HTTPHeaders([
        ("Host", "vpn.example"), ("Connection", "keep-alive, Upgrade"), ("X-Multi", "1"),
        ("connection", " close ,\tTE "), ("x-multi", "2"),
    ])

    @Test func lookupIsCaseInsensitiveAndOrdered() {
        #expect(headers["host"] == "vpn.example")
        #expect(headers["HOST"] == "vpn.example")
        #expect(headers["X-MULTI"] == "1")
        #expect(headers.values("x-Multi") == ["1", "2"])
        #expect(headers["Missing"] == nil)
        #expect(headers.values("Missing").isEmpty)
        #expect(headers.count == 5)
        #expect(headers.contains("CONNECTION"))
        #expect(headers.map(\.name) == ["Host", "Connection", "X-Multi", "connection", "x-multi"])
    }

    @Test func tokensAcrossFieldsAndListElements() {
        #expect(headers.containsToken("close", in: "Connection"))
        #expect(headers.containsToken("upgrade", in: "connection"))
        #expect(headers.containsToken("KEEP-ALIVE", in: "Connection"))
        #expect(headers.containsToken("te", in: "Connection"))
        #expect(!headers.containsToken("keep", in: "Connection"))
        #expect(!headers.containsToken("close", in: "Host"))
        #expect(!HTTPHeaders().containsToken("close", in: "Connection"))
    }

    @Test func addRemoveAndEquality() {
        var copy = headers
        copy.add("Via", "1.1 squid")
        #expect(copy.count == 6 && copy["via"] == "1.1 squid")
        copy.remove("X-MULTI")
        #expect(copy.count == 4 && copy["x-multi"] == nil)
        // Names compare case-insensitively, values exactly, order matters.
        #expect(HTTPHeaders([("A", "1"), ("b", "2")]) == HTTPHeaders([("a", "1"), ("B", "2")]))
        #expect(HTTPHeaders([("A", "1")]) != HTTPHeaders([("A", "1 ")]))
        #expect(HTTPHeaders([("A", "1"), ("B", "2")]) != HTTPHeaders([("B", "2"), ("A", "1")]))
        #expect(HTTPHeaders([("A", "1")]) != HTTPHeaders([("A", "1"), ("A", "1")]))
        #expect(HTTPHeaders([("Ä", "1")]) != HTTPHeaders([("ä", "1")]))
    }
}
