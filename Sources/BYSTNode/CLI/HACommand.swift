import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import Tun

/// `byst ha …`: the gateway side of high availability (docs/OPERATIONS.md, "High availability").
struct HACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ha", abstract: "High-availability gateway tools.",
        subcommands: [Release.self])

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clean up after a gateway that is no longer running: remove its [ha] addresses, and with etcd revoke the lease of a port key that still names it.",
            discussion: """
                For systemd's ExecStopPost=, after the node's process is gone (stopped or crashed). \
                Run it only when that config's `byst up` is not running: it takes the addresses \
                away whatever the node's role. With the embedded registry only the addresses are \
                removed (the registry releases a crashed gateway's port after its close grace). \
                A config without [ha] has nothing to release (exit status 0). Exit status 1 if an \
                address could not be removed or etcd could not be asked.
                """)

        @Option(name: [.short, .customLong("config")], help: "Config file.") var config = "/etc/byst/byst.toml"
        @Option(help: ArgumentHelp("Deadline of each etcd call.", valueName: "duration")) var timeout = "2s"

        func run() async throws {
            let nodeConfig: NodeConfig
            do { nodeConfig = try NodeConfig.load(path: config) } catch { throw CLIError(error.description) }
            guard let ha = nodeConfig.ha, let registry = nodeConfig.registry else {
                print("\(config) has no [ha]: nothing to release")
                return
            }
            guard let timeout = Duration.parseConfig(timeout), timeout <= .seconds(60) else {
                throw CLIError("--timeout must be a duration like \"2s\" (at most 60 s), got '\(self.timeout)'")
            }
            var failed = false
            for address in ha.addresses {
                do throws(NetlinkSocket.Failure) {
                    let removed = try VirtualAddressLink.remove(address.prefix, interface: address.interface)
                    print("\(address.prefix) on \(address.interface): \(removed ? "removed" : "not there")")
                } catch {
                    writeStandardError("byst: \(error)\n")
                    failed = true
                }
            }
            if case .etcd(let members, _) = registry.service {
                let security: EtcdSecurity
                do { security = try EtcdSecurity(registry) } catch { throw CLIError(error.description) }
                // All of a gateway's keys hang on its one lease: the first revoke takes them all.
                for port in ha.ports {
                    let outcome = try await Self.releaseAtEtcd(port: port, nodeName: nodeConfig.name, members: members,
                                                               security: security, timeout: timeout)
                    switch outcome {
                    case .success(let outcome): print("port '\(port)' at etcd: \(outcome)")
                    case .failure(let error):
                        writeStandardError("byst: port '\(port)' at etcd: \(error)\n")
                        failed = true
                    }
                }
            }
            if failed { throw ExitCode(1) }
        }

        static func releaseAtEtcd(port: String, nodeName: String, members: [HostPort], security: EtcdSecurity,
                                  timeout: Duration) async throws -> Result<EtcdPortRelease.Outcome, EtcdCallError> {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let loop = group.next()
            let logger = Logger(label: "byst")
            let answer = loop.flatSubmit { () -> EventLoopFuture<Result<EtcdPortRelease.Outcome, EtcdCallError>> in
                let promise = loop.makePromise(of: Result<EtcdPortRelease.Outcome, EtcdCallError>.self)
                let http = EtcdHTTPClient(endpoints: members, eventLoop: loop, tls: security.tls,
                                          auth: security.credentials.map { EtcdAuthenticator(credentials: $0, logger: logger) })
                EtcdPortRelease.release(port, nodeName: nodeName, http: http, timeout: timeout) { promise.succeed($0) }
                return promise.futureResult
            }
            let result: Result<EtcdPortRelease.Outcome, EtcdCallError>
            do { result = try await answer.get() } catch {
                try? await group.shutdownGracefully()
                throw error
            }
            try? await group.shutdownGracefully()
            return result
        }
    }
}
