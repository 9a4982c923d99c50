import BYSTProto
import Testing
@testable import BYSTNode

/// `[node] registry`, `registry_lease`, `[ha]` and `port:NAME` endpoints.
@Suite struct HAConfigTests {
    static let file = "/etc/byst/hub.toml"

    func error(_ text: String) -> String? { NodeConfig.parseError(text, file: Self.file) }

    @Test func readsAGatewayWithTheEmbeddedRegistry() throws {
        let config = try NodeConfig.parse("""
            [node]
            name = "hub-a"
            listen = ["0.0.0.0:7000"]
            registry = "peer:registry"
            registry_lease = "3s"
            [ha]
            port = "hq"
            advertise = ["byst://198.51.100.1:7000", "https://hq.example:443/byst"]
            [[peer]]
            name = "registry"
            key = "registry"
            endpoint = "byst://198.51.100.9:7100"
            """, file: Self.file)
        #expect(config.registry == RegistryConfig(service: .peer("registry"), lease: .seconds(3)))
        #expect(config.ha?.ports == ["hq"])
        #expect(config.ha?.info == "byst://198.51.100.1:7000 https://hq.example:443/byst")
    }

    /// Active/active: several ports, the preferred first; a peer names the port it belongs to.
    @Test func readsAGatewayOfSeveralPorts() throws {
        let config = try NodeConfig.parse("""
            [node]
            name = "hub-a"
            listen = ["0.0.0.0:7000"]
            registry = "etcd://10.0.0.1:2379"
            [ha]
            ports = ["hq-1", "hq-2"]
            advertise = ["byst://198.51.100.1:7000"]
            [[peer]]
            name = "branch-1"
            key = "b1"
            ha_port = "hq-1"
            [[peer]]
            name = "branch-2"
            key = "b2"
            ha_port = "hq-2"
            [[peer]]
            name = "everywhere"
            key = "e"
            """, file: Self.file)
        #expect(config.ha?.ports == ["hq-1", "hq-2"])
        #expect(config.peers.map(\.haPort) == ["hq-1", "hq-2", nil])
    }

    @Test func readsABranchFollowingAPortThroughEtcd() throws {
        let config = try NodeConfig.parse("""
            [node]
            name = "branch"
            registry = "etcd://10.0.0.1:2379,10.0.0.2:2379,[fd00::3]:2379"
            [[peer]]
            name = "hq"
            key = "hq"
            endpoint = "port:hq"
            gateways = ["hub-a", "hub-b"]
            http_proxy = "http://proxy.corp:3128"
            """, file: Self.file)
        #expect(config.peers.first?.gateways == ["hub-a", "hub-b"])
        #expect(config.registry?.service == .etcd([
            HostPort(host: "10.0.0.1", port: 2379), HostPort(host: "10.0.0.2", port: 2379), HostPort(host: "fd00::3", port: 2379),
        ]))
        #expect(config.registry?.lease == RegistryConfig.defaultLease)
        #expect(config.peers.first?.endpoint == .port("hq"))
        #expect(HAConfig.firstEndpoint(inInfo: "gopher://x byst://10.0.0.1:7000") == .byst(HostPort(host: "10.0.0.1", port: 7000)))
        #expect(HAConfig.firstEndpoint(inInfo: "garbage port:loop") == nil)
    }

    @Test func badValuesGiveOnePreciseLine() {
        let node = "[node]\nname = \"hub\"\n"
        let f = Self.file
        let registryPeer = "[[peer]]\nname = \"registry\"\nkey = \"r\"\nendpoint = \"byst://10.0.0.9:7100\"\n"
        let cases: [(String, String)] = [
            (node + "registry = \"zookeeper://x:1\"\n",
             #"\#(f):3: [node]: registry must be "peer:NAME" (a [[peer]] running `byst registry serve`) or "etcd://host:port,host:port,…" (etcds:// for TLS), got "zookeeper://x:1""#),
            (node + "registry = \"etcd://10.0.0.1:2379,10.0.0.1:2379\"\n",
             #"\#(f):3: [node]: registry must be "etcd://host:port,host:port,…" (distinct members, ports 1…65535)"#),
            (node + "registry = \"peer:nobody\"\n", #"\#(f):3: [node]: peer "nobody" is not defined in any [[peer]]"#),
            (node + "registry = \"peer:registry\"\n[[peer]]\nname = \"registry\"\nkey = \"r\"\n",
             #"\#(f):3: [node]: registry must be a peer with a byst:// or http(s):// endpoint (we dial the registry), got peer "registry" with no endpoint"#),
            (node + "registry_lease = \"3s\"\n", #"\#(f):3: [node]: registry_lease must be set only with registry, got 3s"#),
            (node + "registry = \"peer:registry\"\nregistry_lease = \"1s\"\n" + registryPeer,
             #"\#(f):4: [node]: registry_lease must be 2s…1m, got 1s"#),
            (node + "[ha]\nport = \"hq\"\nadvertise = [\"byst://10.0.0.1:7000\"]\n",
             #"\#(f):4: [ha]: port "hq" needs a registry: [node] registry = "peer:NAME" or "etcd://host:port,…""#),
            (node + "registry = \"peer:registry\"\n[ha]\nport = \"hq\"\n" + registryPeer,
             #"\#(f):4: [ha]: missing required key "advertise""#),
            (node + "registry = \"peer:registry\"\n[ha]\nport = \"hq\"\nadvertise = [\"port:hq\"]\n" + registryPeer,
             #"\#(f):6: [ha]: advertise must be a non-empty array of the endpoints branches dial"#),
            (node + "registry = \"peer:registry\"\n[ha]\nport = \"\"\nadvertise = [\"byst://10.0.0.1:7000\"]\n" + registryPeer,
             #"\#(f):5: [ha]: port must be a port name of 1…255 bytes without control characters, not ending in ".want", got """#),
            (node + "[ha]\nport = \"hq\"\nadvertise = []\nextra = 1\n", #"\#(f):6: [ha]: unknown key "extra""#),
            (node + "registry = \"peer:registry\"\n[ha]\nport = \"hq\"\nports = [\"hq\"]\nadvertise = [\"byst://10.0.0.1:7000\"]\n" + registryPeer,
             #"\#(f):6: [ha]: ports must be either port or ports, not both, got both"#),
            (node + "registry = \"peer:registry\"\n[ha]\nports = []\nadvertise = [\"byst://10.0.0.1:7000\"]\n" + registryPeer,
             #"\#(f):5: [ha]: ports must be a non-empty array of distinct port names"#),
            (node + "registry = \"peer:registry\"\n[ha]\nports = [\"a\", \"a\"]\nadvertise = [\"byst://10.0.0.1:7000\"]\n" + registryPeer,
             #"\#(f):5: [ha]: duplicate port "a""#),
            (node + "registry = \"peer:registry\"\n[ha]\nports = [\"a\", \"b.want\"]\nadvertise = [\"byst://10.0.0.1:7000\"]\n" + registryPeer,
             #"\#(f):5: [ha]: ports must be a non-empty array of distinct port names (each a port name of 1…255 bytes without control characters, not ending in ".want"), this gateway's preferred first, got "b.want""#),
            (node + "registry = \"peer:registry\"\n[ha]\nports = [\"a\", \"b\"]\nadvertise = [\"byst://10.0.0.1:7000\"]\n" + registryPeer + "ha_port = \"c\"\n",
             #"\#(f):11: [[peer]] "registry": ha_port must be one of [ha] ports ("a", "b"), got "c""#),
            // Deny by default: a port:NAME peer names the gateways that may serve it.
            (node + "registry = \"peer:registry\"\n" + registryPeer + "[[peer]]\nname = \"hq\"\nkey = \"hq\"\nendpoint = \"port:hq\"\n",
             #"\#(f):8: [[peer]] "hq": endpoint "port:hq" needs gateways = ["…"]: the gateways that may serve it"#),
            (node + "registry = \"peer:registry\"\n" + registryPeer + "[[peer]]\nname = \"hq\"\nkey = \"hq\"\nendpoint = \"port:hq\"\ngateways = []\n",
             #"\#(f):12: [[peer]] "hq": endpoint "port:hq" needs gateways"#),
            (node + "registry = \"peer:registry\"\n" + registryPeer + "[[peer]]\nname = \"b\"\nkey = \"b\"\ngateways = [\"hub-a\"]\n",
             #"\#(f):11: [[peer]] "b": gateways must be set only with a port:NAME endpoint, got no endpoint"#),
            (node + "[[peer]]\nname = \"b\"\nkey = \"b\"\nports = [\"hq\", \"hq\"]\n", #"\#(f):6: [[peer]] "b": duplicate port "hq""#),
            (node + "[[peer]]\nname = \"b\"\nkey = \"b\"\nports = [\"\"]\n",
             #"\#(f):6: [[peer]] "b": ports must be an array of names of 1…255 bytes without control characters, got """#),
        ]
        for (text, expected) in cases {
            let message = error(text)
            #expect(message?.hasPrefix(expected) == true, "\(message ?? "no error") for\n\(text)")
        }
    }
}
