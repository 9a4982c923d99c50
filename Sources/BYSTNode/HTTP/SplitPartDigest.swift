import BYSTProto
import NIOCore

/// What the server keeps of each of a split link's last upstream parts (PROTOCOL.md §6.3):
/// enough to tell whether a POST that repeats its number carries the same bytes. A client
/// sends a part again only while it is unanswered, and has at most
/// `SplitRegistry.rememberedParts` unanswered, so only those last parts can come again. The
/// tag is a keyed digest under the node's `SplitRegistry` key (GMAC: a fraction of SHA-256's
/// cost per byte, on every byte a split link uploads).
struct SplitPartDigest: Equatable {
    let sequence: UInt64
    let length: Int
    let tag: KeyedDigest.Tag
}

/// Digests an upstream part's body as it arrives, with its connection's `KeyedDigest`.
/// One per POST; `finish()` once, at its end.
struct SplitPartHasher {
    let sequence: UInt64
    /// nil if libcrypto failed: the part then cannot be recognised again.
    private let digest: KeyedDigest?
    private(set) var length = 0

    init(sequence: UInt64, digest: KeyedDigest?) {
        self.sequence = sequence
        self.digest = (try? digest?.begin()) != nil ? digest : nil
    }

    mutating func update(_ bytes: ByteBuffer) {
        length += bytes.readableBytes
        bytes.withUnsafeReadableBytes { _ = try? digest?.update($0) }
    }

    func finish() -> SplitPartDigest? {
        guard let tag = try? digest?.finish() else { return nil }
        return SplitPartDigest(sequence: sequence, length: length, tag: tag)
    }
}
