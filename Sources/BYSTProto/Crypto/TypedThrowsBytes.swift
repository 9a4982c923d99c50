// The standard library's `withUnsafe…Bytes` are `rethrows`, which erases a typed error to
// `any Error`. These keep `throws(E)` intact through the closure.

extension Array where Element == UInt8 {
    @inline(__always)
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { bytes in Result { () throws(E) in try body(bytes) } }.get()
    }

    @inline(__always)
    mutating func withMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try withUnsafeMutableBytes { bytes in Result { () throws(E) in try body(bytes) } }.get()
    }
}

@inline(__always)
func withMutableBytes<T, R, E: Error>(
    of value: inout T, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
) throws(E) -> R {
    try withUnsafeMutableBytes(of: &value) { bytes in Result { () throws(E) in try body(bytes) } }.get()
}
