import BYSTProto
import Logging
import NIOCore

/// `[ha] on_active` / `on_standby` (keepalived's notify): on each transition of a port the
/// matching command runs with `BYST_HA_PORT`, `BYST_HA_ROLE` and `BYST_HA_REASON` set. A
/// port's commands run one at a time, in transition order; one still running after
/// `notify_timeout` is killed (its process group, SIGKILL). How each ended is logged.
/// Nothing blocks the event loop: a running command is polled.
final class HANotifier {
    private struct Job {
        var argv: [String]
        var port: String
        var role: GatewayRole.State
        var reason: String
    }

    private struct Running {
        var job: Job
        var child: ChildProcess
        var startedAt: Nanoseconds
        var poll: Scheduled<Void>?
        var timedOut = false
    }

    static let pollInterval: TimeAmount = .milliseconds(20)

    private let config: HAConfig
    private let eventLoop: EventLoop
    private let logger: Logger
    private var queues: [String: [Job]] = [:]
    private var running: [String: Running] = [:]
    private var stopped = false

    init(config: HAConfig, eventLoop: EventLoop, logger: Logger) {
        self.config = config
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// `port` is now `role` (standby or active) because of `reason`.
    func notify(port: String, role: GatewayRole.State, reason: String) {
        let command = switch role {
        case .active: config.onActive
        case .standby: config.onStandby
        case .claiming: [String]?.none
        }
        guard let argv = command, !stopped else { return }
        queues[port, default: []].append(Job(argv: argv, port: port, role: role, reason: reason))
        startNext(port)
    }

    /// Shutting down: queued commands are dropped; running ones are left to finish (their
    /// endings are no longer logged).
    func stop() {
        stopped = true
        queues.removeAll()
        for (_, run) in running { run.poll?.cancel() }
        running.removeAll()
    }

    private func startNext(_ port: String) {
        guard !stopped, running[port] == nil, var queue = queues[port], !queue.isEmpty else { return }
        let job = queue.removeFirst()
        queues[port] = queue.isEmpty ? nil : queue
        let name = job.role == .active ? "on_active" : "on_standby"
        do throws(ChildProcess.SpawnFailure) {
            let child = try ChildProcess.spawn(job.argv, extraEnvironment: [
                "BYST_HA_PORT": job.port, "BYST_HA_ROLE": job.role.rawValue, "BYST_HA_REASON": job.reason,
            ])
            logger.debug("HA port '\(port)': \(name) started (pid \(child.pid))")
            running[port] = Running(job: job, child: child, startedAt: Clocks.monotonic())
            schedulePoll(port)
        } catch {
            logger.error("HA port '\(port)': \(name) \(job.argv[0]) could not start: \(error)")
            startNext(port)
        }
    }

    private func schedulePoll(_ port: String) {
        running[port]?.poll = eventLoop.assumeIsolated().scheduleTask(in: Self.pollInterval) { [weak self] in
            self?.check(port)
        }
    }

    private func check(_ port: String) {
        guard let run = running[port] else { return }
        let name = run.job.role == .active ? "on_active" : "on_standby"
        let elapsed = Duration.nanoseconds(Int64(Clocks.monotonic() &- run.startedAt))
        if let ending = run.child.poll() {
            running[port] = nil
            let took = "after \(elapsed.nanoseconds / 1_000_000) ms" + (run.timedOut ? " (notify_timeout)" : "")
            if ending == .exited(0) {
                logger.info("HA port '\(port)': \(name) \(run.job.argv[0]) \(ending) \(took)")
            } else {
                logger.warning("HA port '\(port)': \(name) \(run.job.argv[0]) \(ending) \(took)")
            }
            startNext(port)
            return
        }
        if elapsed >= config.notifyTimeout, !run.timedOut {
            logger.warning("HA port '\(port)': \(name) \(run.job.argv[0]) still running after notify_timeout \(config.notifyTimeout.configText): killing it")
            run.child.kill()
            running[port]?.timedOut = true
        }
        schedulePoll(port)
    }
}
