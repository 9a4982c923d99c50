import CCrypto

/// SHA-256 or BLAKE2s over data that arrives in pieces (stream checks in tests and tools).
///
/// **Invariants**: `finalize()` may be called once; updates after it are a caller bug.
public final class IncrementalHash {
    private let context: OpaquePointer
    private let function: HashFunction
    private var finished = false

    public init(_ function: HashFunction = .sha256) throws(CryptoError) {
        guard let context = EVP_MD_CTX_new() else { throw .libcryptoFailure("EVP_MD_CTX_new") }
        let md = function == .sha256 ? EVP_sha256() : EVP_blake2s256()
        guard EVP_DigestInit_ex(context, md, nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw .libcryptoFailure("EVP_DigestInit_ex")
        }
        self.context = context
        self.function = function
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "IncrementalHash updated after finalize")
        if bytes.count > 0 { EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public func finalize() -> [UInt8] {
        precondition(!finished, "IncrementalHash finalized twice")
        finished = true
        var out = [UInt8](repeating: 0, count: function.outputSize)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }
}
