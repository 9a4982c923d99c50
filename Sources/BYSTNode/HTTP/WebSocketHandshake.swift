import BYSTProto

/// The opening handshake of RFC 6455 §4 as BYST uses it (PROTOCOL.md §6.4): the client's key,
/// the server's accept value, and the checks on both heads.
enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    static let version = "13"

    /// `Sec-WebSocket-Key`: 16 random bytes in base64 (24 characters, padded).
    static func makeKey() -> String {
        Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) }, urlSafe: false, padded: true)
    }

    /// A key is 16 bytes in standard base64; anything else is refused with 400.
    static func isValidKey(_ key: String) -> Bool {
        key.utf8.count == 24 && !key.contains("-") && !key.contains("_") && Base64URL.decode(key)?.count == 16
    }

    /// `Sec-WebSocket-Accept`: base64(SHA-1(key ‖ GUID)); nil only if libcrypto fails.
    static func accept(for key: String) -> String? {
        guard let digest = try? SHA1.digest(Array((key + guid).utf8)) else { return nil }
        return Base64URL.encode(digest, urlSafe: false, padded: true)
    }

    /// Why a server's answer to our upgrade is not a WebSocket handshake; nil when it is.
    static func refusal(of head: HTTPResponseHead, key: String) -> HTTPTransportError? {
        guard head.status == 101 else { return .status(head.status, head.reason, refusal: head.headers[BYSTRefusal.headerName]) }
        guard head.headers.containsToken("websocket", in: "upgrade"), head.headers.containsToken("upgrade", in: "connection") else {
            return .webSocket("101 without Upgrade: websocket and Connection: Upgrade")
        }
        guard let expected = accept(for: key), head.headers["sec-websocket-accept"] == expected else {
            return .webSocket("wrong Sec-WebSocket-Accept (a proxy answering in the server's place?)")
        }
        return nil
    }

    /// Why a client's upgrade request is refused, as (status, detail); nil when it is good.
    static func refusal(of head: HTTPRequestHead, hasBody: Bool) -> (status: Int, detail: String)? {
        guard head.version == .http11 else { return (400, "WebSocket upgrade over HTTP/1.0") }
        guard head.headers.containsToken("upgrade", in: "connection") else { return (400, "Upgrade without Connection: Upgrade") }
        guard head.headers["sec-websocket-version"] == version else { return (426, "Sec-WebSocket-Version is not 13") }
        guard let key = head.headers["sec-websocket-key"], isValidKey(key) else { return (400, "missing or malformed Sec-WebSocket-Key") }
        guard !hasBody else { return (400, "WebSocket upgrade with a request body") }
        return nil
    }
}
