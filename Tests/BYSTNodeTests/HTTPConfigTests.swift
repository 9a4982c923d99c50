import Testing
@testable import BYSTNode
import BYSTProto

/// The HTTP transport's config keys: listeners, endpoints, proxies, TLS, recycling.
@Suite struct HTTPConfigTests {
    static let file = "/etc/byst/branch.toml"

    @Test func httpKeysParseToTheirValues() throws {
        let text = """
            [node]
            name = "hq"
            listen = ["0.0.0.0:7000"]
            http_listen = ["0.0.0.0:8080"]
            https_listen = ["[::]:8443"]
            http_path = "/tunnel/v1"
            tls_certificate = "/etc/byst/cert.pem"
            tls_private_key = "/etc/byst/key.pem"

            [[peer]]
            name = "via-proxy"
            key = "k1"
            endpoint = "http://hq.example.com:8080/tunnel/v1"
            http_mode = "split"
            http_proxy = "http://alice:p%40ss%3Aword@proxy.corp:3128"

            [[peer]]
            name = "tls"
            key = "k2"
            endpoint = "https://hq.example.com"
            http_proxy = "http://proxy.corp:3128"
            tls_ca_file = "/etc/byst/ca.pem"
            tls_pin_sha256 = ["sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
            tls_server_name = "vpn.example.com"
            recycle_after = "2m"
            recycle_bytes = "64MiB"

            [[peer]]
            name = "raw"
            key = "k3"
            endpoint = "byst://10.0.0.1:7000"
            recycle_bytes = 1000000

            [[peer]]
            name = "ws"
            key = "k4"
            endpoint = "https://hq.example.com/tunnel/v1"
            http_mode = "websocket"
            http_proxy = "http://proxy.corp:3128"
            """
        let config = try NodeConfig.parse(text, file: Self.file)
        #expect(config.http.listen == [HostPort(host: "0.0.0.0", port: 8080)])
        #expect(config.http.tlsListen == [HostPort(host: "::", port: 8443)])
        #expect(config.http.path == "/tunnel/v1")
        #expect(config.http.tlsCertificate == "/etc/byst/cert.pem" && config.http.tlsPrivateKey == "/etc/byst/key.pem")

        let proxied = try #require(config.peer(named: "via-proxy"))
        #expect(proxied.endpoint == .http(HTTPEndpoint(tls: false, address: HostPort(host: "hq.example.com", port: 8080), path: "/tunnel/v1")))
        #expect(proxied.http.mode == .split)
        #expect(proxied.http.proxy == ProxyConfig(address: HostPort(host: "proxy.corp", port: 3128), username: "alice",
                                                  password: "p@ss:word", mode: .forward))
        #expect(proxied.recycle == .httpDefault)

        let tls = try #require(config.peer(named: "tls"))
        #expect(tls.endpoint == .http(HTTPEndpoint(tls: true, address: HostPort(host: "hq.example.com", port: 443))))
        #expect(tls.http.mode == .auto)
        #expect(tls.http.proxy?.mode == .connect, "https:// goes through CONNECT by default")
        #expect(tls.http.tlsCAFile == "/etc/byst/ca.pem" && tls.http.tlsServerName == "vpn.example.com")
        #expect(tls.http.tlsPins.count == 1 && tls.http.tlsPins[0].count == 32)
        #expect(tls.recycle == LinkRecycling(after: .seconds(120), bytes: 64 << 20))

        let raw = try #require(config.peer(named: "raw"))
        #expect(raw.recycle == LinkRecycling(after: nil, bytes: 1_000_000))

        let webSocket = try #require(config.peer(named: "ws"))
        #expect(webSocket.http.mode == .websocket)
        #expect(webSocket.http.proxy?.mode == .connect, "the upgrade goes through a CONNECT tunnel for https://")
        #expect(webSocket.recycle == .httpDefault)
    }

    @Test func badHTTPKeysGiveOnePreciseLine() {
        let f = Self.file
        let node = "[node]\nname = \"hq\"\n"
        let peer = "[[peer]]\nname = \"b\"\nkey = \"k\"\n"
        let http = peer + "endpoint = \"http://hq:8080/byst\"\n"
        let cases: [(String, String)] = [
            (peer + "endpoint = \"http://hq:8080/by st\"\n",
             #"\#(f):6: [[peer]] "b": endpoint must be "http://host:port/path" or "https://host:port/path" (path of letters, digits, / . _ ~ -; default /byst), got "http://hq:8080/by st""#),
            (peer + "endpoint = \"http://user@hq:8080/byst\"\n",
             #"\#(f):6: [[peer]] "b": endpoint must be "http://host:port/path" or "https://host:port/path" (path of letters, digits, / . _ ~ -; default /byst), got "http://user@hq:8080/byst""#),
            (http + "http_mode = \"fast\"\n", #"\#(f):7: [[peer]] "b": http_mode must be one of "auto", "duplex", "split", "websocket", got "fast""#),
            (peer + "endpoint = \"byst://hq:7000\"\nhttp_mode = \"split\"\n",
             #"\#(f):7: [[peer]] "b": http_mode must be set only with an http:// or https:// endpoint, got endpoint "byst://hq:7000""#),
            (http + "tls_ca_file = \"/ca.pem\"\n",
             #"\#(f):7: [[peer]] "b": tls_ca_file must be set only with an https:// endpoint, got endpoint "http://hq:8080/byst""#),
            (peer + "endpoint = \"https://hq/byst\"\nhttp_proxy = \"http://p:3128\"\nproxy_mode = \"forward\"\n",
             #"\#(f):8: [[peer]] "b": proxy_mode must be "connect" with an https:// endpoint (a forward proxy cannot speak TLS for us), got "forward""#),
            (http + "proxy_mode = \"connect\"\n", #"\#(f):7: [[peer]] "b": proxy_mode must be set only with http_proxy, got "connect""#),
            (http + "http_proxy = \"socks5://p:1080\"\n",
             #"\#(f):7: [[peer]] "b": http_proxy must be "http://[user:password@]host:port" (userinfo %-escaped), got "socks5://p:1080""#),
            (http + "http_proxy = \"http://al%zzice@p:3128\"\n",
             #"\#(f):7: [[peer]] "b": http_proxy must be "http://[user:password@]host:port" (userinfo %-escaped), got "http://al%zzice@p:3128""#),
            (http + "http_proxy = \"https://p:3128\"\n",
             #"\#(f):7: [[peer]] "b": http_proxy "https://p:3128": a TLS (https://) proxy is not supported yet"#),
            (peer + "endpoint = \"https://hq/byst\"\ntls_pin_sha256 = [\"sha256//abc\"]\n",
             #"\#(f):7: [[peer]] "b": tls_pin_sha256 must be "sha256//<base64 of the SHA-256 of the server's public key (SPKI)>", got "sha256//abc""#),
            (http + "recycle_bytes = \"12 MB\"\n",
             #"\#(f):7: [[peer]] "b": recycle_bytes must be a positive integer or a size like "512MiB" or "1GiB", got string "12 MB""#),
        ]
        for (body, expected) in cases {
            #expect(throws: ConfigError.self) { try NodeConfig.parse(node + body, file: f) }
            do {
                _ = try NodeConfig.parse(node + body, file: f)
            } catch {
                #expect(error.description == expected)
            }
        }
        let listeners: [(String, String)] = [
            ("https_listen = [\"0.0.0.0:8443\"]\n",
             #"\#(f):3: [node]: tls_certificate must be set when https_listen is (the server's TLS identity), got nothing"#),
            ("http_listen = [\"0.0.0.0:8080\"]\nlisten = [\"0.0.0.0:8080\"]\n", #"\#(f):3: [node]: duplicate listen address "0.0.0.0:8080""#),
            ("http_path = \"byst\"\n", #"\#(f):3: [node]: http_path must be a path like "/byst" (letters, digits, / . _ ~ -), got "byst""#),
        ]
        for (body, expected) in listeners {
            do {
                _ = try NodeConfig.parse(node + body, file: f)
                Issue.record("accepted: \(body)")
            } catch {
                #expect(error.description == expected)
            }
        }
    }
}
