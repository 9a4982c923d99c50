/// The fuzzer's bytes read front to back, like LLVM's FuzzedDataProvider: control values
/// first, then payloads. Reading past the end yields zeros or nothing, never a trap, so
/// every input is a valid program for a target.
struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var isEmpty: Bool { bytes.isEmpty }

    mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

    /// A little-endian integer from the next `MemoryLayout<T>.size` bytes (zeros past the end).
    mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(byte()) << (8 * index) }
        return value
    }

    /// Up to `count` bytes.
    mutating func take(_ count: Int) -> [UInt8] {
        let piece = bytes.prefix(max(count, 0))
        bytes = bytes.dropFirst(piece.count)
        return Array(piece)
    }

    /// Everything left.
    mutating func rest() -> [UInt8] { take(bytes.count) }
}

/// Cuts bytes into the pieces a socket or proxy might deliver, at points chosen by one
/// fuzzer byte: our parsers are fed incrementally and must not care where the cuts fall.
enum Chunker {
    /// `seed` 0: one piece. Otherwise piece sizes in 1…bound (bound from the low 3 bits)
    /// drawn from a xorshift generator seeded by the byte.
    static func pieces(of bytes: [UInt8], seed: UInt8) -> [ArraySlice<UInt8>] {
        guard seed != 0, !bytes.isEmpty else { return [bytes[...]] }
        let bounds = [1, 2, 3, 5, 8, 17, 64, 700]
        let bound = bounds[Int(seed & 7)]
        var state = UInt32(seed) &* 0x9E37_79B9 | 1
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        while start < bytes.count {
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            let size = 1 + Int(state % UInt32(bound))
            let end = min(start + size, bytes.count)
            pieces.append(bytes[start..<end])
            start = end
        }
        return pieces
    }
}

/// A broken invariant: the fuzzer records the input as a crash.
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    guard condition() else { fatalError("invariant broken: \(message())", file: file, line: line) }
}
