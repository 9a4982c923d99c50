import BYSTProto
import Logging
import NIOCore
import Tun

/// Puts `[ha] address`es on their interfaces while this gateway is active for their port
/// (`VirtualAddressPlan`) and announces each one added (gratuitous ARP / unsolicited NA,
/// `announceAfter`). Called on the event loop; each netlink request is one short blocking
/// round trip to the kernel, like the routes the node installs.
final class VirtualAddressKeeper {
    /// When each announcement of a newly added address goes out: at once (neighbours with
    /// a cached entry switch to us), then twice more for a frame lost or a switch that
    /// learns our port late.
    static let announceAfter: [TimeAmount] = [.zero, .milliseconds(100), .seconds(1)]

    private var plan: VirtualAddressPlan
    private let eventLoop: EventLoop
    private let logger: Logger
    private var announcements: [String: [Scheduled<Void>]] = [:]

    init(config: HAConfig, eventLoop: EventLoop, logger: Logger) {
        plan = VirtualAddressPlan(addresses: config.addresses, defaultPort: config.ports.first ?? "")
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// At start, before standing by: an address a crashed predecessor left behind goes.
    func removeLeftovers() {
        for address in plan.addresses {
            do throws(NetlinkSocket.Failure) {
                if try VirtualAddressLink.remove(address.prefix, interface: address.interface) {
                    logger.notice("HA: removed \(address.prefix) from \(address.interface), left by an earlier run")
                }
            } catch {
                logger.error("HA: could not check for \(address.prefix) on \(address.interface): \(error)")
            }
        }
    }

    /// `port` is ours (lease confirmed): add its addresses and announce them.
    func activate(_ port: String) {
        for address in plan.activate(port) {
            do throws(NetlinkSocket.Failure) {
                try VirtualAddressLink.add(address.prefix, interface: address.interface)
                logger.info("HA port '\(port)': holding \(address.prefix) on \(address.interface)")
            } catch {
                logger.error("HA port '\(port)': \(error)")
                continue
            }
            for delay in Self.announceAfter {
                let task = eventLoop.assumeIsolated().scheduleTask(in: delay) { [logger] in
                    do throws(NetlinkSocket.Failure) {
                        try VirtualAddressLink.announce(address.prefix, interface: address.interface)
                    } catch {
                        logger.warning("HA port '\(port)': \(error)")
                    }
                }
                announcements[port, default: []].append(task)
            }
        }
    }

    /// `port` is no longer ours: its addresses go (and no announcement still pending).
    func standDown(_ port: String) {
        remove(plan.standDown(port), port: port)
    }

    /// Shutting down: every held address goes.
    func releaseAll() {
        for address in plan.releaseAll() { remove([address], port: address.port ?? "") }
    }

    private func remove(_ addresses: [HAAddress], port: String) {
        for task in announcements.removeValue(forKey: port) ?? [] { task.cancel() }
        for address in addresses {
            do throws(NetlinkSocket.Failure) {
                try VirtualAddressLink.remove(address.prefix, interface: address.interface)
                logger.info("HA port '\(port)': released \(address.prefix) on \(address.interface)")
            } catch {
                logger.error("HA port '\(port)': \(error)")
            }
        }
    }
}
