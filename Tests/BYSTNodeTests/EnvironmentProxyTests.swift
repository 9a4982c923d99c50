import Testing
@testable import BYSTNode
import BYSTProto

/// `http_proxy = "env"`: curl's choice of proxy variables and its `no_proxy` matching.
@Suite struct EnvironmentProxyTests {
    static func endpoint(_ text: String) throws -> HTTPEndpoint { try HTTPEndpoint.parse(text).get() }

    static func read(_ environment: [String: String], mode: ProxyConfig.Mode? = nil) throws -> EnvironmentProxy {
        try EnvironmentProxy.read(explicitMode: mode) { environment[$0] }.get()
    }

    @Test func httpEndpointsUseLowercaseHTTPProxyOnlyThenAllProxy() throws {
        let http = try Self.endpoint("http://hub.example.com:8080/byst")
        // Upper-case HTTP_PROXY is ignored, as curl ignores it (httpoxy).
        #expect(try Self.read(["HTTP_PROXY": "http://upper:3128"]).proxy(for: http) == nil)
        let lower = try Self.read(["http_proxy": "http://lower:3128", "HTTP_PROXY": "http://upper:3128", "ALL_PROXY": "http://all:1"])
        #expect(lower.proxy(for: http)?.address.host == "lower")
        #expect(lower.proxy(for: http)?.mode == .forward)
        #expect(lower.source(for: http)?.variable == "http_proxy")
        let all = try Self.read(["https_proxy": "http://tls-only:3128", "ALL_PROXY": "http://all:8000"])
        #expect(all.proxy(for: http)?.address.description == "all:8000")
        let allLower = try Self.read(["all_proxy": "http://lower-all:1", "ALL_PROXY": "http://upper-all:2"])
        #expect(allLower.proxy(for: http)?.address.host == "lower-all")
    }

    @Test func httpsEndpointsPreferLowercaseThenUppercaseThenAllProxyAndConnect() throws {
        let https = try Self.endpoint("https://hub.example.com/byst")
        let both = try Self.read(["https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128", "http_proxy": "http://plain:1"])
        #expect(both.proxy(for: https)?.address.host == "lower")
        #expect(both.proxy(for: https)?.mode == .connect)
        let upper = try Self.read(["HTTPS_PROXY": "http://upper:3128", "http_proxy": "http://plain:1"])
        #expect(upper.proxy(for: https)?.address.host == "upper")
        let all = try Self.read(["http_proxy": "http://plain:1", "ALL_PROXY": "http://all:2"])
        #expect(all.proxy(for: https)?.address.host == "all")
        #expect(try Self.read(["http_proxy": "http://plain:1"]).proxy(for: https) == nil)
    }

    @Test func valuesWithoutSchemeCredentialsAndExplicitMode() throws {
        let http = try Self.endpoint("http://hub:8080/byst")
        let proxy = try Self.read(["http_proxy": " alice:s%3Acret@proxy.corp:3128 "], mode: .connect).proxy(for: http)
        #expect(proxy?.address.description == "proxy.corp:3128")
        #expect(proxy?.username == "alice")
        #expect(proxy?.password == "s:cret")
        #expect(proxy?.mode == .connect)
        #expect(try Self.read(["http_proxy": "proxy.corp"]).proxy(for: http)?.address.port == 80)
        // Empty counts as unset: the next variable in line is used.
        #expect(try Self.read(["http_proxy": "", "all_proxy": "http://all:1"]).proxy(for: http)?.address.host == "all")
    }

    @Test func unusableValuesAreRefusedNamingTheVariable() {
        let problem = EnvironmentProxy.read(explicitMode: nil) { ["HTTPS_PROXY": "socks5://proxy:1080"][$0] }
        guard case .failure(let failure) = problem else {
            Issue.record("a socks5 proxy was accepted")
            return
        }
        #expect(failure.variable == "HTTPS_PROXY")
        #expect(throws: EnvironmentProxyProblem.self) {
            try EnvironmentProxy.read(explicitMode: nil) { ["http_proxy": "https://tls-proxy:443"][$0] }.get()
        }
    }

    @Test func noProxyMatchesLikeCurl() throws {
        let list = NoProxyList("localhost, .corp.example,example.org 10.0.0.0/8  192.168.1.7,[fd00::1], fe80::/10,Intranet:8080")
        for host in ["localhost", "corp.example", "hub.corp.example", "example.org", "a.b.example.org", "10.200.3.4",
                     "192.168.1.7", "fd00::1", "[fd00::1]", "fe80::42", "INTRANET", "hub.corp.example."] {
            #expect(list.matches(host: host), "\(host) should go direct")
        }
        for host in ["notlocalhost", "corp.example.net", "badexample.org", "11.0.0.1", "192.168.1.8", "fd00::2", "intranet.net"] {
            #expect(!list.matches(host: host), "\(host) should use the proxy")
        }
        #expect(NoProxyList("*").matches(host: "anything.example"))
        #expect(!NoProxyList("").matches(host: "localhost"))
        #expect(!NoProxyList("*.example.com").matches(host: "hub.example.net"))
        // Address blocks in every spelling a user writes them; IPv4 never matches IPv6.
        let blocks = NoProxyList("[fd00::]/8, 172.16.0.0/12, ::ffff:10.1.2.3, FE80::1")
        for host in ["fd12::1", "[FD00::7]", "172.31.255.1", "::ffff:10.1.2.3", "fe80::1"] {
            #expect(blocks.matches(host: host), "\(host) should go direct")
        }
        for host in ["fe00::1", "172.32.0.1", "10.1.2.3", "fe80::2"] {
            #expect(!blocks.matches(host: host), "\(host) should use the proxy")
        }
    }

    @Test func noProxyPrecedenceAndEffect() throws {
        let environment = ["http_proxy": "http://proxy:3128", "no_proxy": "hub.internal", "NO_PROXY": "*"]
        let proxies = try Self.read(environment)
        #expect(proxies.proxy(for: try Self.endpoint("http://hub.internal:8080/byst")) == nil)
        #expect(proxies.proxy(for: try Self.endpoint("http://other.example:8080/byst"))?.address.host == "proxy")
        let upperOnly = try Self.read(["http_proxy": "http://proxy:3128", "NO_PROXY": "other.example"])
        #expect(upperOnly.proxy(for: try Self.endpoint("http://other.example:8080/byst")) == nil)
    }

    @Test func configTakesEnvAsTheProxyAndKeepsProxyMode() throws {
        let text = """
            [node]
            name = "branch"

            [[peer]]
            name = "hub"
            key = "k1"
            endpoint = "http://hub.example.com:8080/byst"
            http_proxy = "env"
            proxy_mode = "connect"
            """
        let config = try NodeConfig.parse(text, file: "/etc/byst/branch.toml")
        let environment = try #require(config.peers.first?.http.environmentProxy)
        #expect(environment.explicitMode == .connect)
        #expect(config.peers.first?.http.proxy == nil)
    }
}
