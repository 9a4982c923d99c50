// The control socket (README "Status"): a Unix stream socket, mode 0600. A client writes
// one command line and reads the answer until the server closes: "status", "status summary"
// or "status peer NAME" → one JSON document; "reload" → "ok: <summary>" or "error: <why>" (docs/OPERATIONS.md, "Reload").
import Foundation
import NIOCore
import NIOPosix

enum ControlServer {
    static func start(node: Node) -> EventLoopFuture<Channel> {
        let path = node.config.controlSocket
        do {
            try AtomicFile.makeDirectories(AtomicFile.directory(of: path), mode: 0o755)
        } catch {
            let failure = ControlSocketCheck.Failure(path: path, detail: error.description,
                                                     isDefault: path == NodeConfig.defaultControlSocket(name: node.config.name))
            return node.eventLoop.makeFailedFuture(failure)
        }
        unlink(path)  // a socket left by a previous run
        let bound = NIOLoopBound(node, eventLoop: node.eventLoop)
        // umask 077 while binding, so the socket is never visible with wider permissions.
        let previous = umask(0o077)
        let future = ServerBootstrap(group: node.eventLoop)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ControlHandler(node: bound.value))
                }
            }
            .bind(unixDomainSocketPath: path)
        umask(previous)
        return future.map { channel in
            chmod(path, 0o600)
            bound.value.logger.info("control socket at \(path)")
            return channel
        }
    }
}

final class ControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let node: Node
    private var request = ByteBuffer()
    /// One command per connection: bytes after it are ignored while its answer is prepared.
    private var answering = false

    init(node: Node) { self.node = node }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        request.writeBuffer(&bytes)
        guard !answering, request.readableBytesView.contains(UInt8(ascii: "\n")) || request.readableBytes > 256 else { return }
        answering = true
        let command = String(buffer: request).trimmingCharacters(in: .whitespacesAndNewlines)
        node.watchLoop()
        var reply = ByteBuffer()
        if let view = StatusView(command: command) {
            node.status(view) { report in
                guard let report else {
                    reply.writeString("{\"error\": \"no peer named '\(command.split(separator: " ").last ?? "")' in this node's config\"}\n")
                    return self.answer(reply, context: context)
                }
                // The snapshot is taken on the loop (a slice of peers per tick); turning it into
                // JSON (megabytes for a hub with thousands of peers) is done on a pool thread, so
                // links are not kept waiting.
                NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () -> ByteBuffer in
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    var reply = ByteBuffer(bytes: (try? encoder.encode(report)) ?? Data())
                    reply.writeString("\n")
                    return reply
                }.assumeIsolated().whenComplete { result in
                    self.answer((try? result.get()) ?? ByteBuffer(string: "{\"error\": \"the node is stopping\"}\n"), context: context)
                }
            }
            return
        }
        switch command {
        case "reload":
            let logger = node.logger
            node.reloadFromDisk().assumeIsolated().whenSuccess { result in
                var reply = ByteBuffer()
                switch result {
                case .success(let summary): reply.writeString("ok: \(summary)\n")
                case .failure(let error):
                    logger.error("reload refused: \(error)")
                    reply.writeString("error: \(error)\n")
                }
                self.answer(reply, context: context)
            }
            return
        default:
            reply.writeString("{\"error\": \"unknown command\"}\n")
        }
        answer(reply, context: context)
    }

    /// Writes the one answer and closes the connection.
    private func answer(_ reply: ByteBuffer, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
