import BYSTProto
import Foundation
import Testing
@testable import BYSTNode

/// EtcdRegistryClient with etcd's authentication on (a real single-member etcd whose tokens
/// live 1 s): the token is sent and renewed, etcd's permissions hold, a wrong password is
/// an error in the log rather than a crash, and no secret reaches the log.
@Suite(.serialized) struct EtcdAuthTests {
    let capture = LogCapture()
    static let portKey = EtcdRegistryClient.key("hq")

    /// Users hub (read and write on the key of port hq) and branch (read), then auth on.
    func secure(_ etcd: EtcdProcess) async throws {
        let port = etcd.clientPort
        let calls = [
            ("/v3/auth/user/add", #"{"name":"root","password":"root-secret"}"#),
            ("/v3/auth/user/grant", #"{"user":"root","role":"root"}"#),
            ("/v3/auth/role/add", #"{"name":"gateway"}"#),
            ("/v3/auth/role/grant", #"{"name":"gateway","perm":{"permType":"READWRITE","key":"\#(Self.portKey)"}}"#),
            ("/v3/auth/role/add", #"{"name":"reader"}"#),
            ("/v3/auth/role/grant", #"{"name":"reader","perm":{"permType":"READ","key":"\#(Self.portKey)"}}"#),
            ("/v3/auth/user/add", #"{"name":"hub","password":"hub-secret"}"#),
            ("/v3/auth/user/grant", #"{"user":"hub","role":"gateway"}"#),
            ("/v3/auth/user/add", #"{"name":"branch","password":"branch-secret"}"#),
            ("/v3/auth/user/grant", #"{"user":"branch","role":"reader"}"#),
            ("/v3/auth/enable", "{}"),
        ]
        for (path, json) in calls {
            let answer = try await onThread { try EtcdProcess.post(port: port, path, json) }
            guard !answer.contains("\"error\"") else { throw EtcdTestFailure("\(path): \(answer)") }
        }
    }

    func security(_ user: String, _ password: String) -> EtcdSecurity {
        EtcdSecurity(credentials: .init(user: user, password: password))
    }

    @Test func tokensAreSentRenewedAndBoundByPermissions() async throws {
        let etcd = try EtcdProcess()
        etcd.extraArguments = ["--auth-token-ttl", "1"]
        defer { etcd.close() }
        try await etcd.start()
        try await secure(etcd)
        let hub = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "hub", lease: .seconds(12),
                                              security: security("hub", "hub-secret"), capture: capture, logLevel: .debug)
        let branch = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "branch", lease: .seconds(12),
                                                 security: security("branch", "branch-secret"), capture: capture)
        let anonymous = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "anonymous", lease: .seconds(12), capture: capture)
        defer { hub.close(); branch.close(); anonymous.close() }
        try await hub.start()
        try await branch.start()
        #expect(try await hub.register("hq", info: "byst://10.0.0.1:7000") == .success(.owned))
        try await branch.watch("hq")
        try await branch.expectEvent(.owner(port: "hq", PortOwner(node: "hub", info: "byst://10.0.0.1:7000")))

        // The hub's token expires unused (keepalives need none); its next txn renews it.
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try await hub.register("hq", info: "byst://10.0.0.1:7000") == .success(.owned))
        #expect(capture.contains("token of user \"hub\" expired or revoked; authenticating again"))

        guard case .failure(let refused) = try await branch.register("hq", info: "byst://10.9.9.9:7000") else {
            throw EtcdTestFailure("the branch's user was allowed to claim the port")
        }
        #expect(refused.description.contains("etcdserver: permission denied"), "\(refused)")
        try await anonymous.onLoop { $0.start() }
        let anonymousClaim = try await TestCluster.waitUntil(seconds: 5) {
            guard case .failure(let error) = try await anonymous.register("hq", info: "byst://10.9.9.9:7000") else { return false }
            return error.description.contains("user name is empty (etcd requires authentication: set registry_user and registry_password_file)")
        }
        #expect(anonymousClaim, "a client without credentials was not refused as expected")
        try await branch.expectOwners("hq", [PortOwner(node: "hub", info: "byst://10.0.0.1:7000")])
        #expect(!capture.contains("secret"), "a password reached the log")
    }

    @Test func aWrongPasswordIsAnErrorInTheLogNotACrash() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.close() }
        try await etcd.start()
        try await secure(etcd)
        let hub = try await EtcdClientHarness(endpoints: [etcd.hostPort], node: "hub", lease: .seconds(12),
                                              security: security("hub", "wrong-secret"), capture: capture)
        defer { hub.close() }
        try await hub.onLoop { $0.start() }
        let logged = try await TestCluster.waitUntil(seconds: 5) {
            capture.contains(#"error  etcd: etcd refused (HTTP 400): authenticating as user "hub": etcdserver: authentication failed, invalid user ID or password; check registry_user and registry_password_file (next attempt in 1s)"#)
        }
        #expect(logged, "\(capture.lines.value)")
        guard case .failure = try await hub.register("hq", info: "byst://10.0.0.1:7000") else {
            throw EtcdTestFailure("registered with a wrong password")
        }
        // Within the backoff, attempts are answered from the last refusal: one error line.
        try await Task.sleep(for: .milliseconds(600))
        #expect(capture.lines.value.filter { $0.hasPrefix("error") }.count == 1, "\(capture.lines.value)")
        #expect(try await !hub.isConnected())
        #expect(!capture.contains("secret"), "a password reached the log")
    }
}
