@testable import BYSTNode
@testable import BYSTProto
import Glibc
import NIOCore
@testable import Tun

/// Writes the seed corpora (`byst-fuzz seeds DIR` → DIR/TARGET/NAME): small, valid
/// examples made with the fixed keys, so the fuzzer starts behind the handshake and
/// the AEAD. Deterministic: the same bytes on every run. Config seeds are the example
/// files, copied by hand (see Fuzz/README.md).
enum SeedWriter {
    static func write(into directory: String) -> Bool {
        var ok = true
        for (target, seeds) in [("link", link()), ("record", record()), ("session", session()), ("http", http()),
                                ("keys", keys()), ("registry", registry()), ("netlink", netlink()),
                                ("gso", gso())] {
            let folder = directory + "/" + target
            mkdir(folder, 0o755)
            for (name, bytes) in seeds {
                // Each seed must run clean through its own target.
                FuzzTargets.all.first { $0.name == target }?.run(bytes)
                ok = save(bytes, to: folder + "/" + name) && ok
            }
        }
        return ok
    }

    private static func save(_ bytes: [UInt8], to path: String) -> Bool {
        guard let file = fopen(path, "wb") else {
            print("cannot write \(path)")
            return false
        }
        defer { fclose(file) }
        return bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) } == bytes.count
    }

    // MARK: link

    /// A full handshake with the fixed keys: message 1, message 2, and the keys of both ends.
    struct Handshake {
        var message1: [UInt8]
        var message2: [UInt8]
        var initiator: LinkEstablished
        var responder: LinkEstablished
    }

    static func handshake(suite: AEADAlgorithm) -> Handshake {
        var initiator = LinkInitiator(psk: FuzzKeys.psk, suite: suite, hello: LinkFuzz.branchHello, limits: RecordLimits(),
                                      testingOnlyEphemeral: FuzzKeys.initiatorEphemeral)
        var responder = LinkResponder(local: LinkFuzz.hubLocal, testingOnlyEphemeral: FuzzKeys.responderEphemeral)
        var filter = HandshakeReplayFilter()
        var wire1 = ByteBuffer()
        var wire2 = ByteBuffer()
        do {
            try initiator.start(into: &wire1)
            let message1 = Array(wire1.readableBytesView)
            guard let atResponder = try responder.receive(&wire1, now: FuzzKeys.now, keys: FuzzKeys.lookup,
                                                          replayFilter: &filter, into: &wire2) else { preconditionFailure("no message 2") }
            let message2 = Array(wire2.readableBytesView)
            guard let atInitiator = try initiator.receive(&wire2) else { preconditionFailure("message 2 not accepted") }
            return Handshake(message1: message1, message2: message2, initiator: atInitiator, responder: atResponder)
        } catch {
            preconditionFailure("fixed handshake failed: \(error)")
        }
    }

    /// Session frames a link typically carries first.
    static func frames(_ list: [Frame]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in list { frame.encode(into: &buffer) }
        return buffer
    }

    static func sealed(_ payloads: [ByteBuffer], with sealer: inout RecordSealer, compressible: Bool = false) -> [UInt8] {
        var wire = ByteBuffer()
        var compressor = RecordCompressor(negotiated: true, scope: .all)
        do {
            for payload in payloads {
                let mark = sealer.beginRecord(in: &wire)
                let start = wire.writerIndex
                var copy = payload
                wire.writeBuffer(&copy)
                let flags = compressible ? compressor.compressPayload(in: &wire, from: start, carriesPackets: false) : 0
                try sealer.finishRecord(mark, flags: flags, in: &wire)
            }
        } catch {
            preconditionFailure("sealing a seed failed: \(error)")
        }
        return Array(wire.readableBytesView)
    }

    static let text = ByteBuffer(string: String(repeating: "GET /index.html HTTP/1.1\r\nHost: intranet\r\n\r\n", count: 12))

    static func link() -> [(String, [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        for (suite, name, bit) in [(AEADAlgorithm.aes256gcm, "aes", UInt8(0)), (.chacha20poly1305, "chacha", 4)] {
            var shake = handshake(suite: suite)
            let up = sealed([ByteBuffer(), frames([.ping(1), .open(id: 1, window: 262_144, target: "127.0.0.1:5432")]), text],
                            with: &shake.initiator.sealer, compressible: true)
            let down = sealed([frames([.instance(7), .ack(id: 0, received: 0, limit: 16 << 20)])], with: &shake.responder.sealer)
            seeds.append(("responder-\(name)", [0 | bit, 0] + shake.message1 + up))
            seeds.append(("responder-\(name)-cut", [0 | bit, 3] + shake.message1 + up))
            seeds.append(("initiator-\(name)", [2 | bit, 0] + shake.message2 + down))
        }
        let hubHello = LinkHello(timestamp: FuzzKeys.now, sessionID: LinkFuzz.branchHello.sessionID, linkIndex: 1,
                                 features: [.compression], maxRecordPayload: 65536, nodeName: "hub")
        seeds.append(("hello-in-message1", [1, 0] + LinkFuzz.branchHello.encoded()))
        seeds.append(("hello-in-message2", [3, 0] + hubHello.encoded()))
        return seeds
    }

    // MARK: record

    static func record() -> [(String, [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        for (suite, bit) in [(AEADAlgorithm.aes256gcm, UInt8(0)), (.chacha20poly1305, 2)] {
            let limits = RecordLimits()
            do {
                var sealer = try RecordSealer(algorithm: suite, key: FuzzKeys.recordKey, limits: limits)
                let wire = sealed([ByteBuffer(), frames([.ping(1)]), text], with: &sealer, compressible: true)
                seeds.append(("raw-\(suite)", [bit, 0] + wire))
                seeds.append(("raw-\(suite)-cut", [bit, 5] + wire))
                var rekeying = try RecordSealer(algorithm: suite, key: FuzzKeys.recordKey,
                                                limits: RecordLimits(rekeyAfterRecords: 3))
                let many = sealed((0..<7).map { ByteBuffer(string: "record \($0)") }, with: &rekeying)
                seeds.append(("raw-\(suite)-rekey", [bit | 8, 2] + many))
            } catch {
                preconditionFailure("fixed record key refused: \(error)")
            }
        }
        func plain(_ compression: UInt8, _ payload: [UInt8]) -> [UInt8] {
            [compression, UInt8(payload.count & 0xFF), UInt8(payload.count >> 8)] + payload
        }
        let textBytes = Array(text.readableBytesView)
        let compressed = compressedFrame(textBytes)
        seeds.append(("sealed-plain", [1, 0] + plain(0, []) + plain(0, Array("hello".utf8)) + plain(1, textBytes)))
        seeds.append(("sealed-zstd-raw", [1, 4] + plain(2, compressed) + plain(0, Array("after".utf8))))
        var small: [UInt8] = [1 | 4 | 8, 1]
        for index in 0..<5 { small += plain(UInt8(index % 2), [UInt8](repeating: UInt8(index), count: 300)) }
        seeds.append(("sealed-small-limit-rekey", small))
        return seeds
    }

    /// A real zstd frame (what a compressed record carries), for raw-flagged seeds.
    static func compressedFrame(_ bytes: [UInt8]) -> [UInt8] {
        var compressor = RecordCompressor(negotiated: true, scope: .all)
        var buffer = ByteBuffer(bytes: bytes)
        _ = compressor.compressPayload(in: &buffer, from: buffer.readerIndex, carriesPackets: false)
        return Array(buffer.readableBytesView)
    }

    // MARK: session

    static func session() -> [(String, [UInt8])] {
        func receive(_ link: UInt8, _ list: [Frame]) -> [UInt8] {
            let payload = Array(frames(list).readableBytesView)
            return [0, link, UInt8(payload.count & 0xFF), UInt8(payload.count >> 8)] + payload
        }
        let packet = ByteBuffer(bytes: [0x45, 0, 0, 20] + Array(repeating: 0, count: 16))
        let offload = ByteBuffer(bytes: Array(repeating: 0, count: Frame.offloadHeaderSize) + [0x45, 0, 0, 20] + Array(repeating: 0, count: 16))
        func program(peerStream id: UInt32, ourStream: UInt32) -> [UInt8] {
            var ops: [UInt8] = [4, 0, 4, 1]
            ops += receive(0, [.instance(9), .ack(id: 0, received: 0, limit: 32 << 20), .ping(3)])
            ops += receive(0, [.open(id: id, window: 262_144, target: "127.0.0.1:5432"),
                               .data(id: id, offset: 0, bytes: ByteBuffer(string: "hello")), .fin(id: id, finalOffset: 5)])
            ops += [13, 0, 0, 5, 0]                          // consume the 5 bytes
            ops += [9, 0, 14] + Array("127.0.0.1:8080".utf8) // open a stream of ours
            ops += [10, 0, 4, 0] + Array("ping".utf8) + [0]  // send on it
            ops += [11, 0, 0]                                // finish it
            ops += [8, 0, 0x00, 0x10]                        // write a record for link 0
            ops += receive(1, [.packet(packet), .offloadPacket(offload)])   // packets only: `PacketRecord`
            ops += receive(1, [.packet(packet), .offloadPacket(offload), .pong(1), .ack(id: ourStream, received: 4, limit: 1 << 20)])
            ops += receive(1, [.reset(id: id + 2, code: .cancelled), .retire, .goAway(code: 0)])
            ops += [14, 0, 20, 0] + Array(packet.readableBytesView) + [3] // queue a packet
            ops += [7, 0, 0xE8, 0x03]                         // poll a second later
            ops += [8, 1, 0x00, 0x04, 5, 1, 6, 0, 7, 0, 0x10, 0x27]
            return ops
        }
        return [("initiator", [0] + program(peerStream: 2, ourStream: 1)), ("responder", [1] + program(peerStream: 1, ourStream: 2))]
    }

    // MARK: http

    static func http() -> [(String, [UInt8])] {
        let token = Base64URL.encode((0..<16).map { UInt8($0 * 13 + 1) })
        func seed(_ mode: UInt8, _ split: UInt8, _ text: String) -> [UInt8] { [mode, split] + Array(text.utf8) }
        return [
            ("duplex-post", seed(0, 0, "POST /byst HTTP/1.1\r\nHost: hub:8080\r\nUser-Agent: byst/1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nBYST\u{1}\r\n0\r\n\r\n")),
            ("split-posts", seed(0, 4, "POST /byst?t=\(token)&s=0 HTTP/1.1\r\nHost: hub:8080\r\nContent-Length: 5\r\n\r\nhello"
                + "POST /byst?t=\(token)&s=1 HTTP/1.1\r\nHost: hub:8080\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
                + "POST /byst?t=\(token)&s=2 HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")),
            ("split-get", seed(0, 0, "GET /byst?t=\(token) HTTP/1.1\r\nHost: hub\r\nCache-Control: no-cache, no-store\r\n\r\n")),
            ("absolute-form", seed(4, 2, "\r\nPOST http://hub:8080/byst HTTP/1.1\r\nHost: hub:8080\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\nContent-Length: 3\r\n\r\nabc")),
            ("response-chunked", seed(1, 0, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nBYST\r\n0\r\n\r\n")),
            ("response-407", seed(1 | 16, 3, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 6\r\n\r\ndenied")),
            ("response-connect", seed(1 | 48, 0, "HTTP/1.0 200 Connection established\r\n\r\nBYST")),
            ("response-close", seed(1, 1, "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nbody until close")),
            ("chunked", seed(2, 0, "1a; name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT")),
            ("chunked-small-limits", seed(6, 3, "A  ;x\r\n0123456789\n0\n\n")),
        ]
    }

    // MARK: keys

    static func keys() -> [(String, [UInt8])] {
        let exported = KeyExport.encode(FuzzKeys.psk)
        let standard = Base64URL.encode(FuzzKeys.psk.secret.revealedBytes, urlSafe: false, padded: true)
        return [("export", Array(exported.utf8)), ("export-whitespace", Array(" \t\(exported)\r\n".utf8)),
                ("store-base64", Array(standard.utf8))]
    }

    // MARK: registry

    static func registry() -> [(String, [UInt8])] {
        func stream(_ messages: [RegistryMessage]) -> [UInt8] {
            var buffer = ByteBuffer()
            for message in messages { message.encode(into: &buffer) }
            return Array(buffer.readableBytesView)
        }
        let requests = stream([
            .request(id: 1, .hello(leaseMilliseconds: 5000, relet: [RegistryPortClaim(port: "db", info: "10.0.0.1:5432")])),
            .request(id: 2, .register(port: "web", info: "byst://203.0.113.10:7000")),
            .request(id: 3, .query(port: "web")),
            .request(id: 4, .queryNode("branch-0")),
            .request(id: 5, .watch(port: "db")),
            .request(id: 6, .send(port: "db", body: "failover")),
            .request(id: 7, .unwatch(port: "db")),
            .request(id: 8, .keepalive),
            .request(id: 9, .unregister(port: "web")),
        ])
        let replies = stream([
            .reply(id: 1, .welcome(leaseMilliseconds: 5000, closeGraceMilliseconds: 300, ports: ["db"])), .reply(id: 2, .registered),
            .reply(id: 3, .owner(.init(node: "gw-a", info: "x"))), .reply(id: 4, .ports(["db", "web"])),
            .reply(id: 5, .taken(owner: "gw-b", info: "y")), .reply(id: 6, .retryLater(milliseconds: 900)),
            .reply(id: 7, .error(.limit, "too many")), .reply(id: 8, .done),
            .notice(.ownerChanged(port: "db", owner: nil)), .notice(.lost(port: "db")),
            .notice(.message(from: "gw-a", port: "db", body: "hi")),
        ])
        let greetless = stream([.request(id: 1, .register(port: "db", info: "")), .request(id: 2, .hello(leaseMilliseconds: 1, relet: []))])
        return [("requests", [0, 0] + requests), ("requests-grace-cut", [1, 3] + requests),
                ("replies", [2, 0] + replies), ("no-hello", [4, 6] + greetless)]
    }

    // MARK: netlink

    // MARK: gso

    /// TCP over IPv4 and IPv6 and UDP super-packets (3,000 payload bytes, GSO size 1,000) after
    /// their virtio-net headers, and one packet that only needs its checksum completed.
    static func gso() -> [(String, [UInt8])] {
        func superPacket(ipv6: Bool, udp: Bool, gso: Bool) -> [UInt8] {
            let ipLength = ipv6 ? 40 : 20, transportLength = udp ? 8 : 20
            let total = ipLength + transportLength + 3000
            var packet = [UInt8](repeating: 0x61, count: total)
            packet.replaceSubrange(0..<(ipLength + transportLength), with: [UInt8](repeating: 0, count: ipLength + transportLength))
            if ipv6 {
                packet[0] = 0x60
                packet[4] = UInt8((total - 40) >> 8); packet[5] = UInt8((total - 40) & 0xFF)
                packet[6] = udp ? 17 : 6; packet[7] = 64; packet[23] = 1; packet[39] = 2
            } else {
                packet[0] = 0x45
                packet[2] = UInt8(total >> 8); packet[3] = UInt8(total & 0xFF)
                packet[8] = 64; packet[9] = udp ? 17 : 6
                packet[12] = 10; packet[15] = 1; packet[16] = 10; packet[19] = 2
            }
            let t = ipLength
            packet[t] = 0xC3; packet[t + 2] = 0x14
            if udp {
                packet[t + 4] = UInt8((total - t) >> 8); packet[t + 5] = UInt8((total - t) & 0xFF)
            } else {
                packet[t + 12] = 0x50; packet[t + 13] = 0x18
            }
            let type = !gso ? VirtioNetHeader.gsoNone
                : udp ? VirtioNetHeader.gsoUDPL4 : (ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4)
            let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: type, headerLength: UInt16(t + transportLength),
                                         gsoSize: 1000, checksumStart: UInt16(t), checksumOffset: udp ? 6 : 16)
            return header.bytes + packet
        }
        return [("tcp4", superPacket(ipv6: false, udp: false, gso: true)), ("tcp6", superPacket(ipv6: true, udp: false, gso: true)),
                ("udp4", superPacket(ipv6: false, udp: true, gso: true)), ("csum-only", superPacket(ipv6: true, udp: true, gso: false))]
    }

    static func netlink() -> [(String, [UInt8])] {
        func header(length: UInt32, type: UInt16, sequence: UInt32) -> [UInt8] {
            var out: [UInt8] = []
            NetlinkMessage.append(length, to: &out)
            NetlinkMessage.append(type, to: &out)
            NetlinkMessage.append(UInt16(0), to: &out)
            NetlinkMessage.append(sequence, to: &out)
            NetlinkMessage.append(UInt32(0), to: &out)
            return out
        }
        func error(_ code: Int32, sequence: UInt32) -> [UInt8] {
            var out = header(length: 36, type: NetlinkMessage.nlmsgError, sequence: sequence)
            NetlinkMessage.append(UInt32(bitPattern: code), to: &out)
            return out + header(length: 16, type: 16, sequence: sequence)
        }
        let sequence: [UInt8] = [9, 0, 0, 0]
        return [("ack", sequence + error(0, sequence: 9)), ("eexist", sequence + error(-17, sequence: 9)),
                ("other-first", sequence + header(length: 18, type: 16, sequence: 8) + [0, 0, 0, 0] + error(-1, sequence: 9))]
    }
}
