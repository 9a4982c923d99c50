import NIOCore
import NIOEmbedded
import NIOWebSocket

/// WebSocket frames to bytes and back with NIOWebSocket's own codec, for tests that play a
/// peer (no frame codec written by hand, here either).
enum WebSocketWire {
    static func encode(_ frames: [WebSocketFrame]) throws -> ByteBuffer {
        let channel = EmbeddedChannel(handler: WebSocketFrameEncoder())
        var out = ByteBuffer()
        for frame in frames {
            try channel.writeOutbound(frame)
            while var bytes = try channel.readOutbound(as: ByteBuffer.self) { out.writeBuffer(&bytes) }
        }
        _ = try channel.finish()
        return out
    }

    /// Every whole frame in `bytes` (any mask removed from `data`: use `unmaskedData`).
    static func decode(_ bytes: ByteBuffer) throws -> [WebSocketFrame] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        try channel.writeInbound(bytes)
        var frames: [WebSocketFrame] = []
        while let frame = try channel.readInbound(as: WebSocketFrame.self) { frames.append(frame) }
        _ = try? channel.finish()
        return frames
    }

    static func binary(_ bytes: [UInt8], fin: Bool = true, masked: Bool = true, opcode: WebSocketOpcode = .binary) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, maskKey: masked ? .random() : nil, data: ByteBuffer(bytes: bytes))
    }

    /// The status code of a close frame (nil without one).
    static func closeCode(_ frame: WebSocketFrame) -> UInt16? {
        var data = frame.unmaskedData
        return data.readInteger(as: UInt16.self)
    }
}
