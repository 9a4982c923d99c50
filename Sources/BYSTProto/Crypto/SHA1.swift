/// SHA-1, for one use only: the `Sec-WebSocket-Accept` value of RFC 6455 §4.2.2, which the
/// RFC fixes to SHA-1. It proves nothing about anyone (BYST's own handshake does that); it
/// only shows a proxy and the client that the server understood the upgrade.
public enum SHA1 {
    public static let outputSize = 20

    public static func digest(_ bytes: [UInt8]) throws(CryptoError) -> [UInt8] {
        try LegacyDigest.sha1.hash(bytes)
    }
}
