// A benchmark reference, not a VPN: the leanest TUN ⇄ TCP relay we can write in Swift, with
// BYST's AEAD call sequence (AES-256-GCM through OpenSSL 3's EVP, nonce re-init per record)
// and nothing else — no handshake (a pre-shared key file), no sessions, one link, one thread.
// `scripts/bench-rtt.sh` pings through it next to BYST and OpenVPN, to show how much of
// BYST's round trip its own layers cost and how much NIO's read path does.
//
//   byst-lean-relay listen|dial TUN-NAME ADDRESS PORT KEY-FILE [--nio]
//
// Records: a 2-byte big-endian length n, then n bytes: ciphertext and 16-byte tag; the length
// is the additional data; the nonce is a 4-byte direction and an 8-byte record counter.
// Without --nio one epoll loop reads the TUN and the socket; with --nio NIO channels read
// them (as in BYST); writes are direct system calls either way.
import CCrypto
import CTun
import Glibc
import NIOCore
import NIOPosix

func fail(_ message: String) -> Never {
    let line = "byst-lean-relay: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count >= 6, ["listen", "dial"].contains(arguments[1]), let port = UInt16(arguments[4]) else {
    fail("usage: byst-lean-relay listen|dial TUN-NAME ADDRESS PORT KEY-FILE [--nio]")
}
let listening = arguments[1] == "listen"
let useNIO = arguments.dropFirst(6).contains("--nio")

func readKey(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fail("cannot open \(path)") }
    defer { close(fd) }
    var key = [UInt8](repeating: 0, count: 33)
    guard read(fd, &key, 33) == 32 else { fail("\(path) must hold exactly 32 bytes") }
    return Array(key.prefix(32))
}
let key = readKey(arguments[5])

var actualName = [CChar](repeating: 0, count: 16)
var failedStep: Int32 = 0
let tun = byst_tun_open(arguments[2], 0, &actualName, &failedStep)
guard tun >= 0 else { fail("cannot open TUN \(arguments[2]): \(String(cString: strerror(-tun)))") }

/// The connected TCP socket (blocking set-up: a benchmark tool, before any traffic).
func connectedSocket() -> Int32 {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, arguments[3], &address.sin_addr) == 1 else { fail("not an IPv4 address: \(arguments[3])") }
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    var one: Int32 = 1
    func withAddress(_ body: (UnsafePointer<sockaddr>) -> Int32) -> Int32 {
        withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
    }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var connected = fd
    if listening {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        guard withAddress({ bind(fd, $0, length) }) == 0, listen(fd, 1) == 0 else { fail("cannot listen: \(errno)") }
        connected = accept(fd, nil, nil)
        close(fd)
    } else {
        for attempt in 0... {
            if withAddress({ connect(fd, $0, length) }) == 0 { break }
            guard attempt < 100 else { fail("cannot connect: \(errno)") }
            usleep(100_000)
        }
    }
    guard connected >= 0 else { fail("accept: \(errno)") }
    setsockopt(connected, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
    return connected
}
let socketFD = connectedSocket()
/// What writes use (NIO owns `socketFD` in --nio mode).
let sendFD = dup(socketFD)

/// Both directions' AEAD state and buffers; used on one thread only.
final class Relay: @unchecked Sendable {
    private let sealContext: OpaquePointer
    private let openContext: OpaquePointer
    private var sent: UInt64 = 0
    private var received: UInt64 = 0
    private let sendDirection: UInt32 = listening ? 1 : 2
    private let receiveDirection: UInt32 = listening ? 2 : 1
    private let record = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 + 65_535 + 16)
    private let plain = UnsafeMutablePointer<UInt8>.allocate(capacity: 65_535)
    private let inbound = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
    private var inboundCount = 0
    private var nonce = [UInt8](repeating: 0, count: 12)

    init() {
        guard let seal = EVP_CIPHER_CTX_new(), let open = EVP_CIPHER_CTX_new(),
              EVP_CipherInit_ex(seal, EVP_aes_256_gcm(), nil, key, nil, 1) == 1,
              EVP_CipherInit_ex(open, EVP_aes_256_gcm(), nil, key, nil, 0) == 1
        else { fail("cannot set up AES-256-GCM") }
        sealContext = seal
        openContext = open
    }

    private func setNonce(_ direction: UInt32, _ counter: UInt64) {
        for i in 0..<4 { nonce[i] = UInt8(truncatingIfNeeded: direction >> (24 - 8 * i)) }
        for i in 0..<8 { nonce[4 + i] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * i)) }
    }

    /// Seals one packet from the TUN and sends it whole.
    func fromTun(_ packet: UnsafeRawBufferPointer) {
        guard let base = packet.baseAddress, packet.count > 0 else { return }
        memcpy(record + 2, base, packet.count)
        fromTunInPlace(packet.count)
    }

    /// The packet is already at `record + 2`.
    private func fromTunInPlace(_ count: Int) {
        let length = count + 16
        record[0] = UInt8(length >> 8)
        record[1] = UInt8(length & 0xFF)
        setNonce(sendDirection, sent)
        sent += 1
        var written: Int32 = 0
        guard EVP_CipherInit_ex(sealContext, nil, nil, nil, nonce, 1) == 1,
              EVP_CipherUpdate(sealContext, nil, &written, record, 2) == 1,
              EVP_CipherUpdate(sealContext, record + 2, &written, record + 2, Int32(count)) == 1,
              EVP_CipherFinal_ex(sealContext, record + 2 + count, &written) == 1,
              EVP_CIPHER_CTX_ctrl(sealContext, EVP_CTRL_GCM_GET_TAG, 16, record + 2 + count) == 1
        else { fail("seal failed") }
        var offset = 0
        while offset < length + 2 {
            let sentBytes = send(sendFD, record + offset, length + 2 - offset, Int32(MSG_NOSIGNAL))
            if sentBytes < 0 {
                guard errno == EAGAIN else { fail("send: \(errno)") }
                usleep(10)
                continue
            }
            offset += sentBytes
        }
    }

    /// Reads the TUN until it is empty (own-epoll mode).
    func drainTun() {
        while true {
            let count = read(tun, record + 2, 65_535)
            guard count > 0 else { return }
            fromTunInPlace(count)
        }
    }

    /// Takes socket bytes; opens every whole record and writes its packet to the TUN.
    func fromSocket(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        guard inboundCount + bytes.count <= 1 << 20 else { fail("inbound buffer overflow") }
        memcpy(inbound + inboundCount, base, bytes.count)
        inboundCount += bytes.count
        openRecords()
    }

    /// Reads the socket until it is empty (own-epoll mode).
    func drainSocket() {
        while true {
            let count = recv(socketFD, inbound + inboundCount, (1 << 20) - inboundCount, 0)
            if count == 0 { exit(0) }
            guard count > 0 else { return }
            inboundCount += count
            openRecords()
        }
    }

    private func openRecords() {
        var offset = 0
        while inboundCount - offset >= 2 {
            let length = Int(inbound[offset]) << 8 | Int(inbound[offset + 1])
            guard length >= 16 else { fail("record too short") }
            guard inboundCount - offset >= 2 + length else { break }
            let count = length - 16
            setNonce(receiveDirection, received)
            received += 1
            let text = inbound + offset + 2
            var written: Int32 = 0
            guard EVP_CipherInit_ex(openContext, nil, nil, nil, nonce, 0) == 1,
                  EVP_CipherUpdate(openContext, nil, &written, inbound + offset, 2) == 1,
                  EVP_CipherUpdate(openContext, plain, &written, text, Int32(count)) == 1,
                  EVP_CIPHER_CTX_ctrl(openContext, EVP_CTRL_GCM_SET_TAG, 16, text + count) == 1,
                  EVP_CipherFinal_ex(openContext, plain + count, &written) == 1
            else { fail("record failed authentication") }
            _ = write(tun, plain, count)
            offset += 2 + length
        }
        if offset > 0 {
            memmove(inbound, inbound + offset, inboundCount - offset)
            inboundCount -= offset
        }
    }
}
let relay = Relay()

final class TunReadHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unwrapInboundIn(data).withUnsafeReadableBytes { relay.fromTun($0) }
    }
}

final class SocketReadHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unwrapInboundIn(data).withUnsafeReadableBytes { relay.fromSocket($0) }
    }

    func channelInactive(context: ChannelHandlerContext) { exit(0) }
}

if useNIO {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    do {
        _ = try NIOPipeBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TunReadHandler()) } }
            .takingOwnershipOfDescriptor(input: tun).wait()
        _ = try ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SocketReadHandler()) }
            }
            .withConnectedSocket(socketFD).wait()
    } catch {
        fail("NIO set-up: \(error)")
    }
    while true { pause() }
}

let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
for fd in [tun, socketFD] {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    var event = epoll_event()
    event.events = EPOLLIN.rawValue
    event.data.fd = fd
    guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else { fail("epoll_ctl: \(errno)") }
}
var events = [epoll_event](repeating: epoll_event(), count: 4)
while true {
    let ready = epoll_wait(epollFD, &events, Int32(events.count), -1)
    for index in 0..<max(Int(ready), 0) {
        if events[index].data.fd == tun { relay.drainTun() } else { relay.drainSocket() }
    }
}
