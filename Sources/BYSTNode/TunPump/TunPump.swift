// The packet channel between the TUN interface and peers (DESIGN.md §4 "TUN and routing"):
//
//   reader thread: poll + read(2) ≤ 64 packets ─▶ one hop to the event loop
//   fromTun: parse ─▶ destination in a peer's allowed_ips (longest prefix) ─▶ MSS clamp
//            ─▶ that peer's session ─▶ queue on the link its flow hashes to (bounded, drops)
//   fromPeer: parse ─▶ source inside the sending peer's allowed_ips? else drop (spoofed)
//            ─▶ MSS clamp ─▶ write(2), one packet per call
import BYSTProto
import Foundation
import Glibc
import Logging
import NIOCore
import Synchronization
import Tun

final class TunPump {
    let device: TunDevice
    let mtu: Int
    unowned let node: Node
    private var routes = AllowedIPs<Int>()
    private let reader: TunReader

    struct Counters: Codable, Sendable {
        var packets_from_tun: UInt64 = 0
        var packets_to_tun: UInt64 = 0
        var dropped_no_route: UInt64 = 0
        var dropped_no_session: UInt64 = 0
        var dropped_spoofed_source: UInt64 = 0
        var dropped_malformed: UInt64 = 0
        var dropped_tun_write: UInt64 = 0
    }
    private(set) var counters = Counters()

    init(device: TunDevice, mtu: Int, node: Node) {
        self.device = device
        self.mtu = mtu
        self.node = node
        reader = TunReader(device: device)
        rebuildRoutes()
    }

    /// The routing table from the node's peers (again after a reload changed them).
    func rebuildRoutes() {
        routes = AllowedIPs<Int>()
        for (index, peer) in node.peers.enumerated() {
            for prefix in peer.config.allowedIPs { routes.insert(prefix, peer: index) }
        }
    }

    func start() {
        let pump = NIOLoopBound(self, eventLoop: node.eventLoop)
        let loop = node.eventLoop
        reader.start { batch in
            loop.execute { pump.value.fromTun(batch) }
        }
    }

    func stop() {
        reader.stop()
    }

    var droppedByReader: UInt64 { reader.droppedBatches }

    func fromTun(_ batch: [[UInt8]]) {
        reader.batchDelivered()
        var touched: [ObjectIdentifier: SessionRuntime] = [:]
        for var bytes in batch {
            counters.packets_from_tun += 1
            guard let packet = IPPacket(bytes) else {
                counters.dropped_malformed += 1
                node.metrics.packetDropped(.malformed)
                continue
            }
            guard let peerIndex = routes.lookup(packet.destination) else {
                counters.dropped_no_route += 1
                node.metrics.packetDropped(.noRoute)
                continue
            }
            guard let session = node.peers[peerIndex].sessionForNewStream(), session.machine.hasLinks else {
                counters.dropped_no_session += 1
                node.metrics.packetDropped(.noSession)
                continue
            }
            let hash = packet.flowHash(bytes)
            MSSClamp.clamp(&bytes, mtu: mtu)
            if session.machine.sendPacket(ByteBuffer(bytes: bytes), flowHash: hash) {
                session.metrics.packetsSent.increment()
            } else {
                node.metrics.packetDropped(.queueFull)
            }
            touched[ObjectIdentifier(session)] = session
        }
        for session in touched.values { session.pumpNow() }
    }

    func fromPeer(_ packet: ByteBuffer, peer: PeerRuntime) {
        var bytes = Array(packet.readableBytesView)
        guard let parsed = IPPacket(bytes) else {
            counters.dropped_malformed += 1
            node.metrics.packetDropped(.malformed)
            return
        }
        guard peer.config.allowedIPs.contains(where: { $0.contains(parsed.source) }) else {
            counters.dropped_spoofed_source += 1
            node.metrics.packetDropped(.spoofedSource)
            return
        }
        MSSClamp.clamp(&bytes, mtu: mtu)
        if bytes.withUnsafeBytes({ device.write($0) }) {
            counters.packets_to_tun += 1
        } else {
            counters.dropped_tun_write += 1
            node.metrics.packetDropped(.tunWrite)
        }
    }
}

/// Reads packets on its own thread and hands them to the event loop in batches; at most
/// `maxPendingBatches` batches wait for the loop, beyond that they are dropped (counted).
final class TunReader: Sendable {
    private let device: TunDevice
    private let stopped = Atomic<Bool>(false)
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<UInt64>(0)
    static let batchSize = 64
    static let maxPendingBatches = 64

    init(device: TunDevice) { self.device = device }

    var droppedBatches: UInt64 { dropped.load(ordering: .relaxed) }

    func start(deliver: @escaping @Sendable ([[UInt8]]) -> Void) {
        let thread = Thread { [self] in run(deliver) }
        thread.name = "byst-tun-reader"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func batchDelivered() { pending.subtract(1, ordering: .relaxed) }

    private func run(_ deliver: @Sendable ([[UInt8]]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !stopped.load(ordering: .relaxed) {
            guard device.waitReadable(timeoutMilliseconds: 100) else { continue }
            var batch: [[UInt8]] = []
            while batch.count < Self.batchSize {
                let length = (try? buffer.withUnsafeMutableBytes { try device.read(into: $0) }) ?? nil
                guard let length, length > 0 else { break }
                batch.append(Array(buffer[0..<length]))
            }
            guard !batch.isEmpty else { continue }
            if pending.load(ordering: .relaxed) >= Self.maxPendingBatches {
                dropped.add(1, ordering: .relaxed)
                continue
            }
            pending.add(1, ordering: .relaxed)
            deliver(batch)
        }
    }
}
