import Testing
@testable import BYSTProto

@Suite struct HTTPRequestTargetTests {
    typealias Item = HTTPRequestTarget.QueryItem

    @Test func originForm() throws {
        let target = try HTTPRequestTarget(parsing: "/p?a=1&b=2")
        #expect(target.path == "/p" && target.authority == nil)
        #expect(target.query == [Item("a", "1"), Item("b", "2")])
        #expect(target.value("a") == "1" && target.value("b") == "2" && target.value("A") == nil)
        #expect(try HTTPRequestTarget(parsing: "/").path == "/")
        #expect(try HTTPRequestTarget(parsing: "/link").query.isEmpty)
        #expect(try HTTPRequestTarget(parsing: "/link?").query.isEmpty)
    }

    @Test func queryItemsStayRaw() throws {
        let target = try HTTPRequestTarget(parsing: "/l?a&b=&=c&&d=1=2&k=%41%20b+c&a=second")
        #expect(target.query == [Item("a", ""), Item("b", ""), Item("", "c"), Item("d", "1=2"),
                                 Item("k", "%41%20b+c"), Item("a", "second")])
        #expect(target.value("a") == "" && target.value("k") == "%41%20b+c" && target.value("d") == "1=2")
    }

    @Test func absoluteForm() throws {
        let target = try HTTPRequestTarget(parsing: "http://vpn.example:8080/link?id=7")
        #expect(target.authority == "vpn.example:8080" && target.path == "/link" && target.value("id") == "7")
        let bare = try HTTPRequestTarget(parsing: "HTTPS://[2001:db8::1]:443")
        #expect(bare.authority == "[2001:db8::1]:443" && bare.path == "/" && bare.query.isEmpty)
        let queryOnly = try HTTPRequestTarget(parsing: "http://h?x=1")
        #expect(queryOnly.authority == "h" && queryOnly.path == "/" && queryOnly.value("x") == "1")
    }

    @Test(arguments: ["", "*", "host:443", "link", "ftp://h/p", "http://", "http:///p", "http:/h/p", "http//h/",
                      "/a b", "/a#frag", "/é", "/a\u{7F}", "/a\tb", "http://h/\u{0}"])
    func rejected(_ text: String) {
        #expect(throws: HTTPError.badTarget) { try HTTPRequestTarget(parsing: text) }
    }
}
