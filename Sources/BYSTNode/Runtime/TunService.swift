// The node's TUN (docs/ARCHITECTURE.md §3): the interface and its queues, one data plane per
// queue, the loop's side of the TUN (LoopPackets), and the routes through the interface in
// the kernel. The planes' route tables are TunService+Routes.swift. Event loop only.
//
//   start: open queues ─▶ offloads ─▶ addresses, MTU, routes (rtnetlink) ─▶ planes running
//   stop:  planes stopped (after the links' closes) ─▶ queues closed
import BYSTProto
import Logging
import NIOCore
import NIOPosix
import Tun

final class TunService {
    let config: TunConfig
    /// The interface (its first queue).
    let device: TunDevice
    private let queues: [TunDevice]
    /// The kernel offloads (nil: `offload = false` or not available): with them we offer
    /// `gsoPackets` to peers.
    let offloads: TunDevice.Offloads?
    /// Read and write the TUN, one per queue, and carry its packets over established plain
    /// links, outside the event loop (DataPlane.swift).
    let planes: [DataPlane]
    /// The loop's side of the TUN: packets for and from the links the loop holds.
    let loopPackets: LoopPackets
    /// Links handed to each plane and not yet closed there (`planeForNewLink` balances by it).
    private(set) var linksOnPlanes: [Int]
    /// The last key given to a link a plane owns.
    private var planeKeys: UInt64 = 1
    /// The planes' drop counters as last folded into the metrics.
    private var dropsFolded = TunCounters()
    /// A route table being built for the planes off the loop (TunService+Routes.swift).
    var routeTableBuild: RouteTableBuild?
    /// The peers' allowed_ips routes in the kernel (with `[ha]`: of the peers served), once the
    /// route syncs under way are done (`syncKernelRoutes`).
    private var installedRoutes: EventLoopFuture<Set<IPPrefix>>
    /// The node's peers and their configs, in table order (the route tables are built from them).
    let currentPeers: () -> (peers: [PeerRuntime], configs: [PeerConfig])
    let eventLoop: EventLoop
    private let logger: Logger

    /// Opens and configures the interface (addresses, MTU, `routes`, all through rtnetlink)
    /// and makes a plane per queue (`startPlanes` starts them); nothing is left open if it fails. `maxRecordPayload`
    /// caps the super-packets the kernel hands us; `stripes`: some peer stripes packets (their
    /// frame header is longer).
    init(_ config: TunConfig, routes: [IPPrefix], maxRecordPayload: Int, stripes: Bool,
         loopPackets: LoopPackets, currentPeers: @escaping () -> (peers: [PeerRuntime], configs: [PeerConfig]),
         eventLoop: EventLoop, logger: Logger) throws {
        let queues = try Self.openQueues(config)
        var started = false
        defer { if !started { for queue in queues { queue.close() } } }
        let device = queues[0]
        var offloads: TunDevice.Offloads?
        if config.offload {
            do throws(TunDevice.Failure) {
                offloads = try device.enableOffloads()
            } catch {
                logger.warning("TUN \(config.name): offloads not available (\(error)); packets go one at a time")
            }
        }
        try InterfaceConfigurator.configure(interface: device.name, addresses: config.addresses, mtu: config.mtu, routes: routes)
        if offloads != nil {
            // A super-packet must fit in one record with its frame header (PROTOCOL.md §5.4): a
            // sequenced one's when a peer stripes (larger ones are cut here).
            let frameHeader = stripes ? Frame.sequencedPacketHeaderSize : Frame.packetHeaderSize
            let size = min(Frame.maxPacketSize, maxRecordPayload - frameHeader - Frame.offloadHeaderSize)
            do throws(NetlinkSocket.Failure) {
                try InterfaceConfigurator.setGSOMaxSize(interface: device.name, size: size)
            } catch {
                logger.warning("TUN \(device.name): cannot cap GSO packets at \(size) bytes (\(error)); larger ones are segmented here")
            }
        }
        planes = try queues.enumerated().map { index, queue throws(TunDevice.Failure) in
            try DataPlane(index: index, device: queue, mtu: config.mtu, writesWhole: queue.vnetHeader && offloads != nil,
                          loop: eventLoop, loopPackets: loopPackets, logger: logger)
        }
        self.config = config
        self.device = device
        self.queues = queues
        self.offloads = offloads
        self.loopPackets = loopPackets
        self.currentPeers = currentPeers
        self.eventLoop = eventLoop
        self.logger = logger
        linksOnPlanes = [Int](repeating: 0, count: planes.count)
        installedRoutes = eventLoop.makeSucceededFuture(Set(routes))
        started = true
        logger.info("TUN \(device.name) up: \(config.addresses.map(\.description).joined(separator: ", ")), mtu \(config.mtu), \(config.queues) queue\(config.queues == 1 ? "" : "s"), \(routes.count) routes, offloads \(offloads.map(\.description) ?? "off")")
    }

    /// The planes start reading once they have a route table (`publishRoutesNow`).
    func startPlanes() {
        for plane in planes { plane.start(siblings: planes) }
    }

    /// After the links' closes (queued ahead of it): the planes write what they have sealed,
    /// then the queues close.
    func stop() {
        for plane in planes { plane.stop() }
        for queue in queues { queue.close() }
    }

    /// The `queues` file descriptors (one without IFF_MULTI_QUEUE); none left open on failure.
    private static func openQueues(_ tun: TunConfig) throws(TunDevice.Failure) -> [TunDevice] {
        var queues: [TunDevice] = []
        do throws(TunDevice.Failure) {
            for _ in 0..<tun.queues {
                let name = queues.first?.name ?? tun.name
                queues.append(try TunDevice.open(name: name, multiQueue: tun.queues > 1, vnetHeader: tun.offload))
            }
        } catch {
            for queue in queues { queue.close() }
            throw error
        }
        return queues
    }

    // MARK: Links on the planes

    func nextPlaneKey() -> UInt64 {
        planeKeys += 1
        return planeKeys
    }

    /// A link moved to `plane`, or left it (closed there).
    func linkJoined(_ plane: DataPlane) { linksOnPlanes[plane.index] += 1 }
    func linkLeft(_ plane: DataPlane) { linksOnPlanes[plane.index] -= 1 }

    // MARK: Counters

    /// The TUN's counters: the planes', and the loop's drops of packets it was handed.
    var counters: TunCounters {
        var counters = planes.reduce(TunCounters()) { $0.adding($1.tunCounters) }
        counters.dropped_no_session += loopPackets.droppedNoSession
        return counters
    }

    /// Batches the planes dropped because the event loop had fallen behind.
    var loopBatchesDropped: UInt64 { planes.reduce(0) { $0 + $1.loopBatchesDropped.load(ordering: .relaxed) } }

    /// The planes' TUN drops since the last scrape, into `byst_packets_dropped_total` (the
    /// loop counts its own there as they happen).
    func foldDrops(into metrics: NodeMetrics) {
        let now = planes.reduce(TunCounters()) { $0.adding($1.tunCounters) }
        let was = dropsFolded
        dropsFolded = now
        for ((reason, count), (_, before)) in zip(now.drops, was.drops) where count > before {
            metrics.packetDropped(reason, count: Int(count - before))
        }
    }

    // MARK: Kernel routes

    /// Puts exactly `wanted` (computed on a pool thread: a hub's thousands of prefixes) into
    /// the kernel as routes through the interface. The diff against what is installed and the
    /// netlink requests run on a pool thread, one sync after another.
    func syncKernelRoutes(context: String, wanted: @escaping @Sendable () -> [IPPrefix]) {
        let interface = device.name, addresses = config.addresses, logger = self.logger, loop = eventLoop
        installedRoutes = installedRoutes.flatMap { installed in
            NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
                Self.updateRoutes(from: installed, to: wanted(), interface: interface, addresses: addresses, logger: logger, context: context)
            }.recover { _ in installed }
        }
    }

    /// The routes through `interface` after moving them from `installed` to `wanted`.
    private static func updateRoutes(from installed: Set<IPPrefix>, to wanted: [IPPrefix], interface: String, addresses: [IPPrefix],
                                     logger: Logger, context: String) -> Set<IPPrefix> {
        let wantedSet = Set(wanted)
        let adding = wanted.filter { !installed.contains($0) }
        let removing = installed.filter { !wantedSet.contains($0) }
        guard !adding.isEmpty || !removing.isEmpty else { return installed }
        do throws(NetlinkSocket.Failure) {
            try InterfaceConfigurator.updateRoutes(interface: interface, addresses: addresses, adding: adding, removing: Array(removing))
            return wantedSet
        } catch {
            logger.error("\(context): routes through \(interface): \(error)")
            return installed
        }
    }
}
