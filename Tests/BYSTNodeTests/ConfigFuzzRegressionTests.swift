import BYSTNode
import Testing

/// Configs found by the `config` fuzz target (scripts/fuzz.sh) that aborted the process:
/// toml++ 3.4.0 inside TOMLKit asserts when a table header's key starts with a character
/// that starts no key (marzer/tomlplusplus#301), and when an array meets `}` where a value
/// should be. Each must be a clean syntax error where it is; TOMLKitGuard finds them
/// before TOMLKit sees the text.
@Suite struct ConfigFuzzRegressionTests {
    /// The fuzzer's input, byte for byte: the HA example of docs/OPERATIONS.md with
    /// `[node]` mutated into `[.ode]`.
    static let fuzzerInput = #"""
# hub-a.toml (hub-b.toml is the same with its own name, addresses and registry key)
[.ode]
name = "hub-a"
listen = ["198.51.100.1:7000"]
registry = "peer:registry"          # or "etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379"
registry_lease = "3s"               # with etcd: 5 s or more (see below)
[tun]
address = ["10.0.0.1/24"]           # the same on every gateway of the port
[ha]
port = "hq"
advertise = ["byst://198.51.100.1:7000"]   # what branches dial while we are active
[[peer]]
name = "registry"                   # only with the embedded registry
key = "registry"
endpoint = "byst://192.0.2.10:7100"
links = 1
[[peer]]
name = "lyon"                       # every gateway of the port holds the branch's key
key = "lyon"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24"]

# lyon.toml (the branch)
[node]
name = "lyon"
registry = "peer:registry"
[[peer]]
name = "hq"
key = "hq"                          # the key the gateways know as "lyon"
endpoint = "port:hq"
allowed_ips = ["10.0.0.0/24", "10.2.0.0/24"]

"""#

    /// The second one, byte for byte: deploy/examples/branch-1.toml with mutations, among
    /// them the `]` closing `allowed_ips` turned into `}` (line 26).
    static let arrayInput = #"""
# /etc/byst/byst.toml on branch-1 (Lyon office gateway), LAN 10.1.0.0/16.
#
# Dials the hub at 203.0.113.10 over 4 parallel TCP links. Everything for the tunnel
# subnet and for the Paris office (10.2.0.0/16) goes to the hub, which passes Paris
# traffic on to branch-2. To route for the LAN, this host must forward:
#   sysctl -w nelimiv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
# and the LAN's router needs routes to 10.0.0.0/24 and 10.2.0.0/16 via this host.
#
# Key: byst key import hub   (paste the string from `byst key export branch-1` on the hub)

[node]
name = "branch-1"
# No listen: the hub never dials us, so no inbound port is needed (NAT and proxies are fine).

[tun]
address = ["10.0.0.2/24", "fd00::2/64"]   # name defaults to "byst0", mtu to 1500

[[peer]]
name = "hub"
key = "hub"
endpoint = "bysd://203.0.113.10:7000"
links = 4                                 # the default, written out for clarity
allop_deswi = [
  "10.0.0.0/24", "fd00::/64",             # the tunnel subnets: the hub and, through it, branch-2
  "10.2.0.0/16",                          # the Paris office, reached through the hub
}

# Local port 30864 reaches PostgreSQL on the hub itself (allowed by the hub's
# allow_targets for branch-1), without an IP route for the hub's LAN.
[[forward]]
listen = "127.0.0.1:15432"
peer = "hub"
target = "127.0.0.1:5432"

"""#

    static func syntaxError(_ text: String) -> ConfigError? {
        do throws(ConfigError) {
            _ = try NodeConfig.parse(text, file: "fuzz.toml")
            return nil
        } catch {
            guard case .syntax = error.reason else { return nil }
            return error
        }
    }

    @Test func fuzzerInputIsASyntaxErrorAtTheHeader() throws {
        #expect(Self.fuzzerInput.utf8.count == 1016)
        let error = try #require(Self.syntaxError(Self.fuzzerInput))
        #expect(error.line == 2)
        #expect(error.column == 2)
    }

    @Test func fuzzerArrayInputIsASyntaxErrorAtTheBrace() throws {
        #expect(Self.arrayInput.utf8.count == 1351)
        let error = try #require(Self.syntaxError(Self.arrayInput))
        #expect(error.line == 26)
        #expect(error.column == 1)
    }

    @Test(arguments: [("x = [}\n", 1, 6), ("x = [\"a\", }\n", 1, 11), ("x = [[1], [ }]]\n", 1, 13), ("x = [ { a = 1 } ]\ny = [}", 2, 6)])
    func braceInsideAnArrayIsASyntaxError(text: String, line: Int, column: Int) throws {
        let error = try #require(Self.syntaxError(text))
        #expect(error.line == line)
        #expect(error.column == column)
    }

    /// The other shapes of the header assertion: any key start but a bare-key character, a
    /// quote or `]`, after `[` or `[[` and blanks (also a third `[`, and a line break).
    @Test(arguments: [
        ("[!]\n", 1, 2), ("[[[1]]]\n", 1, 3), ("[\n[node]\n", 1, 2), ("[[ =\n", 1, 4), ("x = 1\n  [ .b]\n", 2, 5),
        ("\u{FEFF}[.x]\n", 1, 2), ("[\r\n", 1, 2), ("[[\t#\n", 1, 4),
    ])
    func headersTOMLKitWouldAbortOnAreSyntaxErrors(text: String, line: Int, column: Int) throws {
        let error = try #require(Self.syntaxError(text))
        #expect(error.line == line)
        #expect(error.column == column)
    }

    /// Lines that start with such a `[` inside strings, comments or multi-line arrays are not
    /// headers: the check leaves them to the parser, which reads them as values.
    @Test func bracketsInsideValuesAreNotHeaders() {
        let text = """
        [node]
        name = "hub"
        listen = [
          "0.0.0.0:7000", # [!
        ]
        key_store = '''
        [.not a header
        '''

        """
        // key_store is a path: whatever the loader says about it, it is not a syntax error.
        #expect(Self.syntaxError(text) == nil)
    }
}
