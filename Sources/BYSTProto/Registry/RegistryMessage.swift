import NIOCore

// The embedded registry's messages (PROTOCOL.md §7), carried on one BYST stream opened with
// the target `@registry`. Each message is `u32 length ‖ body`; the body is `u8 kind ‖ u32
// request id ‖ fields`. Strings are `u16 length ‖ UTF-8`. Replies carry the id of the request
// they answer; events carry id 0.

public enum RegistryRequest: Sendable, Equatable {
    /// First on every stream: the lease the client wants and the ports it owned before
    /// (a relet; empty on a fresh start).
    case hello(leaseMilliseconds: UInt32, relet: [RegistryPortClaim])
    case register(port: String, info: String)
    case unregister(port: String)
    case query(port: String)
    case queryNode(String)
    case watch(port: String)
    case unwatch(port: String)
    case send(port: String, body: String)
    case keepalive

    /// A client wants no more than a minute (its ports would outlive it) and no less than
    /// the time for a few keepalives.
    public static let leaseRange: ClosedRange<UInt32> = 500...60_000
}

public struct RegistryPortClaim: Sendable, Equatable {
    public var port: String
    public var info: String
    public init(port: String, info: String) {
        self.port = port
        self.info = info
    }
}

public enum RegistryReply: Sendable, Equatable {
    /// To `hello`: the lease granted and the ports the client owns now.
    case welcome(leaseMilliseconds: UInt32, closeGraceMilliseconds: UInt32, ports: [String])
    /// To `unregister`, `watch`, `unwatch`, `send` and `keepalive`.
    case done
    /// To `register`.
    case registered
    case taken(owner: String, info: String)
    /// The registry restarted recently: only relets may take ports for this long.
    case retryLater(milliseconds: UInt32)
    /// To `query`: the owner, if any.
    case owner(RegistryPortClaim.Owner?)
    /// To `queryNode`.
    case ports([String])
    case error(RegistryErrorCode, String)
}

extension RegistryPortClaim {
    public struct Owner: Sendable, Equatable {
        public var node: String
        public var info: String
        public init(node: String, info: String) {
            self.node = node
            self.info = info
        }
    }
}

public enum RegistryErrorCode: UInt8, Sendable {
    case badRequest = 1
    case helloFirst = 2
    case noOwner = 3
    case limit = 4
    /// The client may not own this port (the registry's `[[peer]] ports` do not list it).
    case notAllowed = 5
}

public enum RegistryNotice: Sendable, Equatable {
    /// A watched port's owner changed (nil: released).
    case ownerChanged(port: String, owner: RegistryPortClaim.Owner?)
    /// The client's lease ran out: `port` is no longer its own.
    case lost(port: String)
    /// A message for the owner of `port`.
    case message(from: String, port: String, body: String)
}

/// Any message on the stream, as the decoder yields it.
public enum RegistryMessage: Sendable, Equatable {
    case request(id: UInt32, RegistryRequest)
    case reply(id: UInt32, RegistryReply)
    case notice(RegistryNotice)
}

public enum RegistryWireError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLong(Int)
    case unknownKind(UInt8)
    case truncated
    case notUTF8
    case trailingBytes

    public var description: String {
        switch self {
        case .tooLong(let length): "registry message of \(length) bytes exceeds \(RegistryMessage.maxBodyBytes)"
        case .unknownKind(let kind): "unknown registry message kind 0x\(String(kind, radix: 16))"
        case .truncated: "truncated registry message"
        case .notUTF8: "registry string is not UTF-8"
        case .trailingBytes: "bytes after the end of a registry message"
        }
    }
}

extension RegistryMessage {
    public static let maxBodyBytes = 64 * 1024
    /// Port names and node names; infos and message bodies may use the rest of a message.
    public static let maxNameBytes = 255

    enum Kind: UInt8 {
        case hello = 0x01, register, unregister, query, queryNode, watch, unwatch, send, keepalive
        case welcome = 0x81, done, registered, taken, retryLater, owner, ports, error
        case ownerChanged = 0xC1, lost, message
    }

    /// `u32 length ‖ body`.
    public func encode(into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        encodeBody(into: &buffer)
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: lengthIndex)
    }

    private func encodeBody(into b: inout ByteBuffer) {
        func head(_ kind: Kind, _ id: UInt32) {
            b.writeInteger(kind.rawValue)
            b.writeInteger(id)
        }
        func string(_ text: String) {
            // Callers keep strings within their limits; the cut only keeps the framing intact.
            let bytes = text.utf8.prefix(Int(UInt16.max))
            b.writeInteger(UInt16(bytes.count))
            b.writeBytes(bytes)
        }
        func owner(_ owner: RegistryPortClaim.Owner?) {
            b.writeInteger(UInt8(owner == nil ? 0 : 1))
            if let owner { string(owner.node); string(owner.info) }
        }
        switch self {
        case .request(let id, let request):
            switch request {
            case .hello(let lease, let relet):
                head(.hello, id)
                b.writeInteger(lease)
                b.writeInteger(UInt16(relet.count))
                for claim in relet { string(claim.port); string(claim.info) }
            case .register(let port, let info): head(.register, id); string(port); string(info)
            case .unregister(let port): head(.unregister, id); string(port)
            case .query(let port): head(.query, id); string(port)
            case .queryNode(let node): head(.queryNode, id); string(node)
            case .watch(let port): head(.watch, id); string(port)
            case .unwatch(let port): head(.unwatch, id); string(port)
            case .send(let port, let body): head(.send, id); string(port); string(body)
            case .keepalive: head(.keepalive, id)
            }
        case .reply(let id, let reply):
            switch reply {
            case .welcome(let lease, let closeGrace, let ports):
                head(.welcome, id)
                b.writeInteger(lease)
                b.writeInteger(closeGrace)
                b.writeInteger(UInt16(ports.count))
                for port in ports { string(port) }
            case .done: head(.done, id)
            case .registered: head(.registered, id)
            case .taken(let node, let info): head(.taken, id); string(node); string(info)
            case .retryLater(let milliseconds): head(.retryLater, id); b.writeInteger(milliseconds)
            case .owner(let current): head(.owner, id); owner(current)
            case .ports(let ports):
                head(.ports, id)
                b.writeInteger(UInt16(ports.count))
                for port in ports { string(port) }
            case .error(let code, let text): head(.error, id); b.writeInteger(code.rawValue); string(text)
            }
        case .notice(let notice):
            switch notice {
            case .ownerChanged(let port, let current): head(.ownerChanged, 0); string(port); owner(current)
            case .lost(let port): head(.lost, 0); string(port)
            case .message(let from, let port, let body): head(.message, 0); string(from); string(port); string(body)
            }
        }
    }

    /// Decodes one body (without its length prefix); every byte must be used.
    public static func decode(body: ByteBuffer) throws(RegistryWireError) -> RegistryMessage {
        var b = body
        guard let kindByte: UInt8 = b.readInteger(), let id: UInt32 = b.readInteger() else { throw .truncated }
        guard let kind = Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        func string() throws(RegistryWireError) -> String {
            guard let length: UInt16 = b.readInteger(), let bytes = b.readBytes(length: Int(length)) else { throw .truncated }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8 }
            return text
        }
        func u32() throws(RegistryWireError) -> UInt32 {
            guard let value: UInt32 = b.readInteger() else { throw .truncated }
            return value
        }
        func u16() throws(RegistryWireError) -> Int {
            guard let value: UInt16 = b.readInteger() else { throw .truncated }
            return Int(value)
        }
        func owner() throws(RegistryWireError) -> RegistryPortClaim.Owner? {
            guard let present: UInt8 = b.readInteger() else { throw .truncated }
            guard present != 0 else { return nil }
            return RegistryPortClaim.Owner(node: try string(), info: try string())
        }
        func strings() throws(RegistryWireError) -> [String] {
            var list: [String] = []
            for _ in 0..<(try u16()) { list.append(try string()) }
            return list
        }
        let message: RegistryMessage
        switch kind {
        case .hello:
            let lease = try u32()
            var relet: [RegistryPortClaim] = []
            for _ in 0..<(try u16()) { relet.append(RegistryPortClaim(port: try string(), info: try string())) }
            message = .request(id: id, .hello(leaseMilliseconds: lease, relet: relet))
        case .register: message = .request(id: id, .register(port: try string(), info: try string()))
        case .unregister: message = .request(id: id, .unregister(port: try string()))
        case .query: message = .request(id: id, .query(port: try string()))
        case .queryNode: message = .request(id: id, .queryNode(try string()))
        case .watch: message = .request(id: id, .watch(port: try string()))
        case .unwatch: message = .request(id: id, .unwatch(port: try string()))
        case .send: message = .request(id: id, .send(port: try string(), body: try string()))
        case .keepalive: message = .request(id: id, .keepalive)
        case .welcome: message = .reply(id: id, .welcome(leaseMilliseconds: try u32(), closeGraceMilliseconds: try u32(), ports: try strings()))
        case .done: message = .reply(id: id, .done)
        case .registered: message = .reply(id: id, .registered)
        case .taken: message = .reply(id: id, .taken(owner: try string(), info: try string()))
        case .retryLater: message = .reply(id: id, .retryLater(milliseconds: try u32()))
        case .owner: message = .reply(id: id, .owner(try owner()))
        case .ports: message = .reply(id: id, .ports(try strings()))
        case .error:
            guard let codeByte: UInt8 = b.readInteger() else { throw .truncated }
            message = .reply(id: id, .error(RegistryErrorCode(rawValue: codeByte) ?? .badRequest, try string()))
        case .ownerChanged: message = .notice(.ownerChanged(port: try string(), owner: try owner()))
        case .lost: message = .notice(.lost(port: try string()))
        case .message: message = .notice(.message(from: try string(), port: try string(), body: try string()))
        }
        guard b.readableBytes == 0 else { throw .trailingBytes }
        return message
    }
}

/// Splits a stream's bytes into messages; any chunking works.
public struct RegistryMessageDecoder: Sendable {
    private var buffer = ByteBuffer()

    public init() {}

    public mutating func feed(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// The next complete message, nil if more bytes are needed.
    public mutating func next() throws(RegistryWireError) -> RegistryMessage? {
        guard let length: UInt32 = buffer.getInteger(at: buffer.readerIndex) else { return nil }
        guard length <= RegistryMessage.maxBodyBytes else { throw .tooLong(Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let body = buffer.readSlice(length: Int(length)) else { return nil }
        defer { buffer.discardReadBytes() }
        return try RegistryMessage.decode(body: body)
    }
}
