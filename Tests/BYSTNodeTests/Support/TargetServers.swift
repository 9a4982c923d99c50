import BYSTProto
import Foundation

/// A TCP server on loopback that hashes everything a connection sends and, at its end of
/// data, answers with the 32-byte SHA-256 and closes: the far end of a SHA-checked stream.
final class DigestServer: Sendable {
    let port: UInt16
    private let listener: BlockingSocket

    init() throws {
        listener = try BlockingSocket.listen()
        port = listener.localPort
        let listener = self.listener
        Thread.detachNewThread {
            while let client = listener.accept() {
                Thread.detachNewThread { DigestServer.serve(client) }
            }
        }
    }

    private static func serve(_ client: BlockingSocket) {
        guard let hash = try? IncrementalHash() else { return client.close() }
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = (try? chunk.withUnsafeMutableBytes { try client.read(into: $0) }) ?? 0
            if n <= 0 { break }
            chunk.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        let digest = hash.finalize()
        try? digest.withUnsafeBytes { try client.sendAll($0) }
        client.shutdownWrite()
        client.close()
    }

    func stop() {
        listener.shutdownBoth()
        listener.close()
    }
}

/// A TCP server that accepts connections and never reads from them: a stalled reader.
final class StalledServer: Sendable {
    let port: UInt16
    private let listener: BlockingSocket
    private let held = LockedBox<[BlockingSocket]>([])

    init() throws {
        listener = try BlockingSocket.listen()
        port = listener.localPort
        let listener = self.listener
        let held = self.held
        Thread.detachNewThread {
            while let client = listener.accept() {
                var small: Int32 = 4096
                setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
                held.withLock { $0.append(client) }
            }
        }
    }

    func stop() {
        listener.shutdownBoth()
        listener.close()
        held.withLock { for socket in $0 { socket.close() } }
    }
}

/// Sends `count` pseudo-random bytes through a forward and returns (sent digest, digest the
/// far end computed).
func sendThroughForward(port: UInt16, count: Int, seed: UInt64) throws -> (sent: [UInt8], received: [UInt8]) {
    let socket = try BlockingSocket.connect(port: port)
    defer { socket.close() }
    // A transfer that stops moving fails the test instead of hanging it (a stalled tunnel).
    socket.setSendTimeout(seconds: 60)
    socket.setReceiveTimeout(seconds: 60)
    let hash = try IncrementalHash()
    var generator = SplitMix64(seed: seed)
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    var remaining = count
    while remaining > 0 {
        let size = min(remaining, chunk.count)
        for index in stride(from: 0, to: size, by: 8) {
            var word = generator.next()
            withUnsafeBytes(of: &word) { raw in
                for offset in 0..<min(8, size - index) { chunk[index + offset] = raw[offset] }
            }
        }
        try chunk.withUnsafeBytes { all in
            let part = UnsafeRawBufferPointer(rebasing: all[0..<size])
            hash.update(part)
            try socket.sendAll(part)
        }
        remaining -= size
    }
    socket.shutdownWrite()
    return (hash.finalize(), try socket.readToEnd(limit: 64))
}

