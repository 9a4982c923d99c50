/// RFC 6455 §5.3 masking: byte i XOR key[i mod 4]. Applying it twice restores the bytes.
/// Eight bytes at a time: a link's whole upstream passes through here on the server.
public enum WebSocketMask {
    /// Masks or unmasks `bytes` in place with `key` (4 bytes), starting at key position 0.
    public static func apply(key: (UInt8, UInt8, UInt8, UInt8), to bytes: UnsafeMutableRawBufferPointer) {
        apply(key: key, from: UnsafeRawBufferPointer(bytes), to: bytes)
    }

    /// Writes `source` masked or unmasked with `key` into `destination` (at least as long; it
    /// may be `source` itself): one pass where a copy and then an in-place pass would be two.
    public static func apply(key: (UInt8, UInt8, UInt8, UInt8), from source: UnsafeRawBufferPointer,
                             to destination: UnsafeMutableRawBufferPointer) {
        precondition(destination.count >= source.count, "WebSocketMask: destination shorter than source")
        guard let from = source.baseAddress, let to = destination.baseAddress else { return }
        let count = source.count
        let keyBytes = [key.0, key.1, key.2, key.3]
        // The key repeated over 8 bytes in memory order, as the loads below read them.
        var word: UInt64 = 0
        withUnsafeMutableBytes(of: &word) { for index in 0..<8 { $0[index] = keyBytes[index % 4] } }
        var offset = 0
        while offset + 8 <= count {
            let value = from.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            to.storeBytes(of: value ^ word, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < count {
            to.storeBytes(of: from.load(fromByteOffset: offset, as: UInt8.self) ^ keyBytes[offset % 4],
                          toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }
}
