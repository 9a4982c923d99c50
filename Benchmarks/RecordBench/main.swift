// Record seal/open throughput, release build only (a benchmark, not a test).
//
//   swift run -c release byst-record-bench [--seconds S] [--sizes 1420,16384,65536]
//
// For each AEAD and record size it seals a batch of records in place in one reused buffer
// and opens them in place again, timing seal and open separately on the wall clock. As on
// the data path, the payload is already in the buffer when it is sealed (opening in place
// leaves the plaintext where the next seal finds it), so no copy is timed. Output lines
// are machine-readable for scripts/bench-records.sh:
//   record <algorithm> <payload bytes> <seal B/s> <open B/s> <seal+open B/s>
import BYSTProto
import Glibc
import NIOCore

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

var seconds = 2.0
var sizes = [1420, 16 * 1024, 64 * 1024]
var algorithms = AEADAlgorithm.allCases
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--seconds": seconds = arguments.popFirst().flatMap(Double.init) ?? seconds
    case "--sizes": sizes = arguments.popFirst()?.split(separator: ",").compactMap { Int($0) } ?? sizes
    case "--aes-only": algorithms = [.aes256gcm]
    default:
        print("usage: byst-record-bench [--seconds S] [--sizes a,b,c] [--aes-only]")
        exit(2)
    }
}

for algorithm in algorithms {
    for size in sizes {
        let key = try SecretBytes.random(count: 32)
        let limits = RecordLimits(maxPayload: max(size, 1024))
        var sealer = try RecordSealer(algorithm: algorithm, key: key, limits: limits, peerMaxPayload: limits.maxPayload)
        var opener = try RecordOpener(algorithm: algorithm, key: key, limits: limits)
        // ~4 MiB per batch: large enough to amortise timing, small enough to stay in L3-ish.
        let recordsPerBatch = max(4, (4 << 20) / size)
        var wire = ByteBuffer()
        wire.reserveCapacity(recordsPerBatch * (size + RecordFormat.overhead))
        // Lay out the batch once: header space, payload, tag space per record.
        for _ in 0..<recordsPerBatch {
            wire.writeInteger(UInt32(0))
            wire.writeRepeatingByte(0x5A, count: size)
            wire.writeRepeatingByte(0, count: RecordFormat.tagSize)
        }
        var sealNanos: UInt64 = 0
        var openNanos: UInt64 = 0
        var bytes: UInt64 = 0
        let budget = UInt64(seconds * 1e9)
        var checksum = 0
        // One warm-up batch, then measured batches until the time budget is spent.
        var batch = 0
        while sealNanos + openNanos < budget || batch < 2 {
            wire.moveReaderIndex(to: 0)
            wire.moveWriterIndex(to: 0)
            let t0 = monotonicNanoseconds()
            for _ in 0..<recordsPerBatch {
                let mark = sealer.beginRecord(in: &wire)
                wire.moveWriterIndex(forwardBy: size)  // the payload is already in place
                try sealer.finishRecord(mark, in: &wire)
            }
            let t1 = monotonicNanoseconds()
            while let record = try opener.open(&wire) { checksum &+= record.payload.readableBytes }
            let t2 = monotonicNanoseconds()
            if batch > 0 {
                sealNanos += t1 - t0
                openNanos += t2 - t1
                bytes += UInt64(recordsPerBatch * size)
            }
            batch += 1
        }
        precondition(checksum == batch * recordsPerBatch * size, "records lost")
        let seal = Double(bytes) / (Double(sealNanos) / 1e9)
        let open = Double(bytes) / (Double(openNanos) / 1e9)
        let both = Double(bytes) / (Double(sealNanos + openNanos) / 1e9)
        print("record \(algorithm) \(size) \(Int(seal)) \(Int(open)) \(Int(both))")
    }
}
