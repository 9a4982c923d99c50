// `byst-bench flood`: bogus connections to a link listener, for the flood test
// (Tests/E2E/flood.sh, docs/RELIABILITY.md "Flood resistance"). Only for networks of one's own:
// the command refuses targets outside loopback and private ranges.
//
//   every ≤ 1 ms ─▶ connections due at --rate (at most --connections open) ─▶ non-blocking connect
//   connected ─▶ one payload: a bogus message 1 (right preamble, random key id or --key-id,
//                random ephemeral and ciphertext), junk bytes, a junk HTTP head, or nothing
//            ─▶ closed by the node, or reset by us after --hold
//   --seconds over ─▶ stop starting, reset what is still open ─▶ counts
//
// Plain non-blocking sockets and poll(2) on one thread per --threads, not NIO: a generator must
// outrun the node it floods, also in a debug build on a 2-core machine (where a channel per
// connection costs about 1 ms). Bounded: at most rate × seconds connections, at most
// --connections at once, every one reset (SO_LINGER 0: no TIME_WAIT left) within --hold.
import Foundation
import Glibc

enum FloodGenerator {
    /// Runs the flood on `threads` threads, each with its share of the rate and connections.
    static func run(_ options: FloodOptions, threads: Int) async -> FloodResult {
        await withTaskGroup(of: FloodResult.self) { group in
            for index in 0..<threads {
                var share = options
                share.rate = options.rate / threads + (index < options.rate % threads ? 1 : 0)
                share.maxOpen = max(1, options.maxOpen / threads)
                let part = share
                group.addTask {
                    // Its own thread: the loop blocks in poll(2), never a cooperative thread.
                    await withCheckedContinuation { continuation in
                        let niceness = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
                        Thread.detachNewThread {
                            // `nice byst-bench flood` sets the main thread's niceness; a thread
                            // started from a pool thread does not inherit it (Linux: per thread).
                            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
                            var worker = FloodWorker(options: part, seed: UInt64(index + 1))
                            continuation.resume(returning: worker.run())
                        }
                    }
                }
            }
            var total = FloodResult()
            for await result in group { total.add(result) }
            return total
        }
    }
}
