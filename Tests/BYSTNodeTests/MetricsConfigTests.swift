import BYSTProto
import Testing
@testable import BYSTNode

/// `[node] metrics_listen`: the addresses of the Prometheus endpoint.
@Suite struct MetricsConfigTests {
    static let file = "/etc/byst/hub.toml"

    func error(_ text: String) -> String? { NodeConfig.parseError(text, file: Self.file) }

    @Test func defaultsToNoListener() throws {
        let config = try NodeConfig.parse("[node]\nname = \"hub\"\n", file: Self.file)
        #expect(config.metricsListen.isEmpty)
    }

    @Test func readsAddresses() throws {
        let config = try NodeConfig.parse("""
            [node]
            name = "hub"
            listen = ["0.0.0.0:7000"]
            metrics_listen = ["127.0.0.1:9480", "[::1]:9480"]
            """, file: Self.file)
        #expect(config.metricsListen == [HostPort(host: "127.0.0.1", port: 9480), HostPort(host: "::1", port: 9480)])
        #expect(config.listen == [HostPort(host: "0.0.0.0", port: 7000)])
    }

    @Test func badValuesGiveOnePreciseLine() {
        let node = "[node]\nname = \"hub\"\n"
        let f = Self.file
        let cases: [(String, String)] = [
            (node + "metrics_listen = \"127.0.0.1:9480\"\n",
             #"\#(f):3: [node]: metrics_listen must be an array of "host:port" with a port 1…65535 (IPv6 as "[::1]:7000") strings, got string "127.0.0.1:9480""#),
            (node + "metrics_listen = [\"127.0.0.1\"]\n",
             #"\#(f):3: [node]: metrics_listen must be "host:port" with a port 1…65535 (IPv6 as "[::1]:7000"), got "127.0.0.1""#),
            // The same address cannot serve links and metrics.
            (node + "listen = [\"127.0.0.1:9480\"]\nmetrics_listen = [\"127.0.0.1:9480\"]\n",
             #"\#(f):4: [node]: duplicate listen address "127.0.0.1:9480""#),
            (node + "metrics_listen = [\"127.0.0.1:9480\", \"127.0.0.1:9480\"]\n",
             #"\#(f):3: [node]: duplicate listen address "127.0.0.1:9480""#),
            (node + "metric_listen = []\n", "\(f):3: [node]: unknown key \"metric_listen\" (expected one of: "),
        ]
        for (text, expected) in cases {
            let message = error(text)
            #expect(message?.hasPrefix(expected) == true, "\(message ?? "no error") for\n\(text)")
        }
    }
}
