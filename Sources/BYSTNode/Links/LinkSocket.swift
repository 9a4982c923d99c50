// A plain link's socket, for writing records around NIO's write path (docs/perf-log/
// 2026-11-27-tun-speed-issue-7.md, "Records sent straight to the socket"):
//
//   LinkHandler.write ─▶ NIO holds nothing for the socket? ─ yes ─▶ send(2) on our descriptor
//                                                          └ no, or the kernel took only part ─▶ NIO write (in order)
//
// Why: NIO's write and flush path costs about as much per small record as the seal does; an
// idle echo crosses it twice. Only established links with nothing between the handler and
// the socket (no TLS, no HTTP framing) get one.
import Glibc

/// A duplicate of a link channel's descriptor, owned here: NIO closes its own when the channel
/// closes, and this one stays valid (the same socket) until `close()` — so a send can never
/// reach another file that was given the channel's old number.
///
/// **Invariant**: used on the channel's event loop only, and only while NIO holds no unwritten
/// bytes for the socket (the caller tracks them), so bytes leave in the order they were written.
final class LinkSocket {
    private var descriptor: Int32

    /// Duplicates `descriptor` (close-on-exec); nil if the process is out of descriptors
    /// (the link then writes through NIO only).
    init?(duplicating descriptor: Int32) {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return nil }
        self.descriptor = copy
    }

    deinit { close() }

    var isOpen: Bool { descriptor >= 0 }

    /// Gives the descriptor to a new owner (the data plane); nil if already closed.
    func takeDescriptor() -> Int32? {
        guard descriptor >= 0 else { return nil }
        defer { descriptor = -1 }
        return descriptor
    }

    /// Sends what the kernel takes now without waiting; returns how many bytes it took.
    /// Zero when the socket buffer is full or the send failed: the caller hands the rest to
    /// NIO, which then waits for room or reports the error through the channel as usual.
    func sendNow(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard descriptor >= 0, let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
        while true {
            // MSG_NOSIGNAL: a peer that reset the connection must not raise SIGPIPE.
            let sent = send(descriptor, base, bytes.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            if sent >= 0 { return sent }
            if errno != EINTR { return 0 }
        }
    }

    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }
}
