import CTun

/// glibc gives memory freed at the top of a heap back to the kernel once more than
/// `M_TRIM_THRESHOLD` of it is free (128 KiB at first), and serves blocks above an adaptive
/// threshold from mmaps of their own; either way the next allocation there faults its pages
/// in again, zero-filled. The daemon frees and allocates buffers of up to several MiB all
/// the time (streams' send buffers, up to twice `stream_buffer` as NIO grows them; record
/// batches the event loop lays out and a data plane frees once written): on a forward
/// between two TUN nodes the sending loop's CPU per byte was bimodal, in some runs ≈ 1.6×
/// the rest, the difference page faults in its copies. Fixed thresholds keep such memory in
/// the process for reuse: blocks below 32 MiB (glibc's largest mmap threshold) come from the
/// heaps, which keep up to 64 MiB free. What is retained is bounded by the peak the daemon
/// used. Daemons only (`runDaemon`).
enum AllocatorTuning {
    static func keepFreedMemoryForReuse() {
        _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 64 << 20)
    }
}
