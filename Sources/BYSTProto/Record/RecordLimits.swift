/// Record layer constants and limits (PROTOCOL.md §4).
///
/// Protocol constants are fixed by the wire format; limits are implementation choices each
/// side may tune (and advertise in its handshake hello).
public enum RecordFormat {
    /// `flags u8 | length u24`, authenticated as associated data.
    public static let headerSize = 4
    public static let tagSize = AEADAlgorithm.tagSize
    public static let overhead = headerSize + tagSize
    /// The largest length a u24 can carry.
    public static let maximumEncodableLength = (1 << 24) - 1
    /// Flag bit 0: the payload is zstd-compressed (negotiated; see PROTOCOL.md §4.2).
    public static let flagCompressed: UInt8 = 0x01
    public static let knownFlags: UInt8 = flagCompressed
}

public struct RecordLimits: Sendable, Equatable {
    /// Largest plaintext payload this side accepts in one record. 64 KiB holds a whole GSO
    /// super-packet plus frame headers; 1 MiB caps what one record can make us buffer.
    public var maxPayload: Int
    /// Rekey (Noise `REKEY`) after this many records in one direction…
    public var rekeyAfterRecords: UInt64
    /// …or this many payload bytes, whichever comes first. 2^34 bytes (16 GiB) keeps AES-GCM
    /// far below its per-key confidentiality bound (2^30 blocks ≪ 2^48 at a 2^-32 advantage).
    public var rekeyAfterBytes: UInt64

    public static let defaultMaxPayload = 64 * 1024
    public static let upperMaxPayload = 1 << 20

    public init(
        maxPayload: Int = RecordLimits.defaultMaxPayload,
        rekeyAfterRecords: UInt64 = 1 << 20,
        rekeyAfterBytes: UInt64 = 1 << 34
    ) {
        self.maxPayload = min(max(maxPayload, 1024), Self.upperMaxPayload)
        self.rekeyAfterRecords = max(rekeyAfterRecords, 1)
        self.rekeyAfterBytes = max(rekeyAfterBytes, 1)
    }
}
