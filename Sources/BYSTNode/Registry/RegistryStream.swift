import BYSTProto
import NIOCore

/// One `@registry` stream (PROTOCOL.md §7) as messages: bytes from the session are decoded
/// into `RegistryMessage`s, messages to send are framed and queued until the stream's window
/// takes them. Used by both ends (EmbeddedRegistryClient, RegistryServer), and by
/// `byst-bench registry` (Benchmarks/BenchTool) through `RunningNode.openRegistryStream`.
package final class RegistryStream: StreamEndpoint {
    static let target = "@registry"
    /// A peer that does not read its replies cannot make us hold more than this.
    static let maxQueuedBytes = 1 << 20

    let session: SessionRuntime
    var id: UInt32?
    package var onMessage: ((RegistryMessage) -> Void)?
    /// The stream ended (reset, finished, closed or a protocol error), with why.
    package var onClose: ((String) -> Void)?
    /// The peer's session state is new (it restarted): it reset our stream for that.
    private(set) var peerRestarted = false
    private var decoder = RegistryMessageDecoder()
    private var outbox = ByteBuffer()
    private var closed = false

    init(session: SessionRuntime) {
        self.session = session
    }

    package func send(_ message: RegistryMessage) {
        guard !closed else { return }
        message.encode(into: &outbox)
        guard outbox.readableBytes <= Self.maxQueuedBytes else {
            return fail("peer does not read its registry replies (\(outbox.readableBytes) bytes queued)")
        }
        flush()
    }

    /// Ends the stream after what is queued (a reset would drop it).
    func finish() {
        guard !closed, let id else { return }
        closed = true
        flush()
        session.finish(id)
    }

    /// Ends the stream from our side at once.
    package func close() {
        guard !closed, let id else { return }
        closed = true
        session.reset(id, code: .cancelled)
    }

    private func flush() {
        guard let id, outbox.readableBytes > 0 else { return }
        _ = session.send(&outbox, on: id)
        outbox.discardReadBytes()
    }

    private func fail(_ reason: String) {
        guard !closed else { return }
        closed = true
        if let id { session.reset(id, code: .protocolError) }
        onClose?(reason)
    }

    private func ended(_ reason: String) {
        guard !closed else { return }
        closed = true
        onClose?(reason)
    }

    // MARK: StreamEndpoint

    func streamData(_ bytes: ByteBuffer) {
        guard !closed, let id else { return }
        decoder.feed(bytes)
        session.consumed(bytes.readableBytes, on: id)
        do throws(RegistryWireError) {
            while !closed, let message = try decoder.next() { onMessage?(message) }
        } catch {
            fail("\(error)")
        }
    }

    func streamFinished() { ended("stream finished by the peer") }
    func streamReset(_ code: Frame.ResetCode) {
        if code == .sessionExpired { peerRestarted = true }
        ended("stream reset: \(code)")
    }
    func streamWritable() { flush() }
    func streamClosed() { ended("stream closed") }
}

extension RunningNode {
    /// What `openRegistryStream` found.
    package enum RegistryStreamOpening {
        case opened(RegistryStream)
        /// No session with a link to that peer (yet), or no such peer.
        case noLink
        /// The session has links but refused a new stream.
        case refused
    }

    /// Opens a `@registry` stream to the `[[peer]]` `peerName` over its session; only from a
    /// task already on the node's loop. For `byst-bench registry` (Benchmarks/BenchTool),
    /// which drives the registry through a node of its own.
    package func openRegistryStream(toPeer peerName: String) -> RegistryStreamOpening {
        var opening = RegistryStreamOpening.noLink
        withNodeOnLoop { node in
            guard let session = node.peer(named: peerName)?.sessionForNewStream(), !session.links.isEmpty else { return }
            let stream = RegistryStream(session: session)
            guard let id = session.openStream(target: RegistryStream.target, endpoint: stream) else {
                opening = .refused
                return
            }
            stream.id = id
            opening = .opened(stream)
        }
        return opening
    }
}
