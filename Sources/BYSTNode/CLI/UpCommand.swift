import ArgumentParser
import BYSTProto
import Dispatch
import Glibc
import Logging

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Run the node daemon: links to peers, port forwards, control socket.")

    @Option(name: [.short, .customLong("config")], help: "Config file.") var config = "/etc/byst/byst.toml"
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Option(help: "Log format: text, or json (one JSON object per line).") var logFormat = LogFormat.text

    func run() async throws {
        try await runDaemon(config: config, logLevel: logLevel, logFormat: logFormat, registryGrace: nil)
    }
}

/// `byst up` and `byst registry serve`: load, start, reload on SIGHUP, stop on SIGTERM/SIGINT.
func runDaemon(config: String, logLevel: String, logFormat: LogFormat, registryGrace: Duration?,
               registryCloseGrace: Duration = PortRegistry.Configuration().closeGrace) async throws {
    guard let level = Logger.Level(rawValue: logLevel) else { throw CLIError("unknown log level '\(logLevel)'") }
    let nodeConfig: NodeConfig
    do { nodeConfig = try NodeConfig.load(path: config) } catch { throw CLIError(error.description) }
    // What would fail once the TUN is up (a bound port, a TUN name, a key) is refused before.
    let loadedKeys = Result { () throws(KeyStore.Failure) in try KeyStore.load(path: nodeConfig.keyStore) }
    let problems = Preflight.problems(nodeConfig, file: config, text: try? readConfigText(path: config), keys: loadedKeys)
    for warning in problems where warning.severity == .warning { writeStandardError("byst: \(warning)\n") }
    let errors = problems.filter { $0.severity == .error }
    if let first = errors.first {
        throw CLIError(first.description + (errors.count > 1 ? " (and \(errors.count - 1) more problems: byst check -c \(config))" : ""))
    }
    let keys: KeyStore
    do { keys = try loadedKeys.get() } catch { throw CLIError(error.description) }
    AllocatorTuning.keepFreedMemoryForReuse()
    let format = logFormat
    LoggingSystem.bootstrap { label in format.makeHandler(label: label, level: level) }
    let logger = Logger(label: "byst")
    let node: RunningNode
    do {
        node = try await RunningNode.start(config: nodeConfig, keys: keys, logger: logger, configPath: config,
                                           registryGrace: registryGrace, registryCloseGrace: registryCloseGrace)
    } catch {
        throw CLIError("cannot start: \(error)")
    }
    let notifier = ServiceNotifier.fromEnvironment()
    let name = nodeConfig.name
    @Sendable func notify(_ failure: String?, _ state: String) {
        if let failure { logger.warning("systemd: cannot send \(state) to NOTIFY_SOCKET: \(failure)") }
    }
    notify(notifier.ready(status: "node \(name) up"), "READY=1")
    ReloadSignal.install { [node, logger] in
        Task {
            notify(notifier.reloading(), "RELOADING=1")
            var status = "node \(name) up, config reloaded"
            defer { notify(notifier.ready(status: status), "READY=1") }
            do {
                switch try await node.reload() {
                case .success: break  // the node logs what changed
                case .failure(let error):
                    logger.error("SIGHUP: reload refused: \(error)")
                    status = "node \(name) up, reload refused: \(error)"
                }
            } catch {
                logger.error("SIGHUP: reload failed: \(error)")
                status = "node \(name) up, reload failed: \(error)"
            }
        }
    }
    let signal = await TerminationSignal.wait()
    logger.info("received signal \(signal): stopping")
    notify(notifier.stopping(), "STOPPING=1")
    try await node.shutdown()
}

/// SIGHUP reloads the config (docs/OPERATIONS.md, "Reload").
enum ReloadSignal {
    nonisolated(unsafe) private static var source: DispatchSourceSignal?

    static func install(_ handler: @escaping @Sendable () -> Void) {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "byst.sighup"))
        source.setEventHandler(handler: handler)
        source.resume()
        self.source = source
    }
}

/// Waits for SIGTERM or SIGINT (the default actions are disabled so shutdown is graceful).
enum TerminationSignal {
    private final class Once: @unchecked Sendable {
        private var continuation: CheckedContinuation<Int32, Never>?
        private let lock = NSLockLike()
        init(_ continuation: CheckedContinuation<Int32, Never>) { self.continuation = continuation }
        func resume(_ signal: Int32) {
            lock.withLock {
                continuation?.resume(returning: signal)
                continuation = nil
            }
        }
    }

    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let once = Once(continuation)
            let queue = DispatchQueue(label: "byst.signals")
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { once.resume(number) }
                source.resume()
                sources.append(source)
            }
        }
    }
}

/// A pthread mutex: enough for a one-shot continuation without importing Foundation here.
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
