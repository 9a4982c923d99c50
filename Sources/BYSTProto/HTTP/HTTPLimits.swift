/// Implementation limits of the HTTP/1.1 codec. They bound what a hostile peer can make
/// us buffer or scan; nothing in the protocol fixes them.
///
/// **Invariants**: the head parser never looks at more than `maxHeadBytes` bytes of one
/// head; the body decoder buffers nothing, and counts at most `maxChunkLine` bytes of a
/// size line and `maxTrailerBytes` bytes of trailers.
public struct HTTPLimits: Sendable, Equatable {
    /// Request/status line and header fields, including leading empty lines, line endings
    /// and the blank line. 16 KiB is 2× what nginx accepts by default in one header buffer
    /// (8 KiB) and far above the ~300 bytes BYST's own heads take.
    public var maxHeadBytes = 16 * 1024
    /// Header fields in one head. Proxies add a handful (Via, X-Forwarded-*); 64 is
    /// generous and keeps the field array small.
    public var maxHeaders = 64
    /// One chunk-size line including extensions and CR, excluding the LF. 1 KiB leaves
    /// room for extensions we ignore while 15 hex digits need only 15 bytes.
    public var maxChunkLine = 1024
    /// The trailer section after the last chunk, including its blank line. Trailers are
    /// ignored, so 4 KiB only bounds how long we skip.
    public var maxTrailerBytes = 4096

    public init() {}
}
