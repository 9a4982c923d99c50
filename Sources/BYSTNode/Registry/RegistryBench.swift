import BYSTProto
import NIOCore

/// `byst registry bench`: drives one `@registry` stream as fast as the registry answers —
/// alternating register and query of up to 200 ports, `window` requests in flight — and
/// reports operations per second (docs/PERFORMANCE.md, "Registry").
final class RegistryBench {
    struct Result: Sendable {
        var operations: Int
        var seconds: Double
        var errors: Int
    }

    private unowned let node: Node
    private let peerName: String
    private let operations: Int
    private let window: Int
    private let promise: EventLoopPromise<Result>
    private var stream: RegistryStream?
    private var sent = 0
    private var answered = 0
    private var errors = 0
    private var started: Nanoseconds = 0
    private var waits = 0

    init(node: Node, peerName: String, operations: Int, window: Int, promise: EventLoopPromise<Result>) {
        self.node = node
        self.peerName = peerName
        self.operations = operations
        self.window = window
        self.promise = promise
    }

    func start() {
        guard let session = node.peer(named: peerName)?.sessionForNewStream(), !session.links.isEmpty else {
            waits += 1
            guard waits < 200 else { return promise.fail(CLIError("no link to peer '\(peerName)' within 10 s")) }
            node.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { [self] in start() }
            return
        }
        let stream = RegistryStream(session: session)
        guard let id = session.openStream(target: RegistryStream.target, endpoint: stream) else {
            return promise.fail(CLIError("cannot open a stream to peer '\(peerName)'"))
        }
        stream.id = id
        stream.onClose = { [self] reason in promise.fail(CLIError("registry stream ended: \(reason)")) }
        stream.onMessage = { [self] message in received(message) }
        self.stream = stream
        stream.send(.request(id: 0, .hello(leaseMilliseconds: 10_000, relet: [])))
    }

    private func received(_ message: RegistryMessage) {
        guard case .reply(let id, let reply) = message else { return }
        if id == 0 {
            started = Clocks.monotonic()
            return sendMore()
        }
        answered += 1
        if case .error = reply { errors += 1 }
        if answered == operations {
            stream?.onClose = nil
            stream?.close()
            return promise.succeed(Result(operations: answered, seconds: Double(Clocks.monotonic() - started) / 1e9, errors: errors))
        }
        sendMore()
    }

    private func sendMore() {
        while sent < operations, sent - answered < window {
            sent += 1
            let port = "bench-\(sent % 200)"
            let request: RegistryRequest = sent % 2 == 0 ? .query(port: port) : .register(port: port, info: "byst://127.0.0.1:7000")
            stream?.send(.request(id: UInt32(sent), request))
        }
    }
}
