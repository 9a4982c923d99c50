import BYSTProto
import NIOCore

/// What the server keeps of a split link's last upstream part (PROTOCOL.md §6.3): enough to
/// tell whether a POST that repeats its number carries the same bytes. A client sends a part
/// again only while it is unanswered, and sends the next only after an answer, so only the
/// last part can come again.
struct SplitPartDigest: Equatable {
    let sequence: UInt64
    let length: Int
    let sha256: [UInt8]
}

/// Hashes an upstream part's body as it arrives. One per POST; `finish()` once, at its end.
struct SplitPartHasher {
    let sequence: UInt64
    /// nil if libcrypto could not make a context: the part then cannot be recognised again.
    private let hash: IncrementalHash?
    private(set) var length = 0

    init(sequence: UInt64) {
        self.sequence = sequence
        hash = try? IncrementalHash(.sha256)
    }

    mutating func update(_ bytes: ByteBuffer) {
        length += bytes.readableBytes
        bytes.withUnsafeReadableBytes { hash?.update($0) }
    }

    func finish() -> SplitPartDigest? {
        hash.map { SplitPartDigest(sequence: sequence, length: length, sha256: $0.finalize()) }
    }
}
