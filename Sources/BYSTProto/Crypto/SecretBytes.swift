import CCrypto

/// Secret key material in memory that is wiped (`OPENSSL_cleanse`) when dropped.
///
/// **Invariants**
/// - The bytes are written only while initialising; afterwards the storage is read-only,
///   which is what makes sharing an instance across threads safe.
/// - Equality is never `==` on secrets: use ``constantTimeEquals(_:)``.
public final class SecretBytes: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    /// Creates `count` bytes filled by `initializer`; on a throw the bytes are wiped.
    public init<E: Error>(
        count: Int, initializer: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        do throws(E) {
            try initializer(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        } catch {
            Self.wipe(storage)
            storage.deallocate()
            throw error
        }
        self.count = count
    }

    public convenience init(_ bytes: some Sequence<UInt8>) {
        let array = Array(bytes)
        self.init(count: array.count) { buffer in buffer.copyBytes(from: array) }
    }

    /// `count` bytes from the OS CSPRNG (OpenSSL's DRBG, seeded from getrandom(2)).
    public static func random(count: Int) throws(CryptoError) -> SecretBytes {
        try SecretBytes(count: count) { (buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            try SecureRandom.fill(buffer)
        }
    }

    public let count: Int

    public func withUnsafeBytes<R, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Compares in time independent of where the bytes differ (`CRYPTO_memcmp`).
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { mine in
            other.withUnsafeBytes { theirs in
                CRYPTO_memcmp(mine.baseAddress, theirs.baseAddress, count) == 0
            }
        }
    }

    /// A copy of the bytes for tests and for the explicit export paths (`--secret`).
    public var revealedBytes: [UInt8] { withUnsafeBytes { Array($0) } }

    deinit {
        Self.wipe(storage)
        storage.deallocate()
    }

    private static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        OPENSSL_cleanse(buffer.baseAddress, buffer.count)
    }

    /// Overwrites a transient copy of secret bytes (a file's contents, a decoded key) with
    /// zeros in a way the optimizer keeps, then empties it.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { wipe($0) }
        bytes.removeAll()
    }
}
