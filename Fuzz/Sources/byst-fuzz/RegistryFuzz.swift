import BYSTProto
import NIOCore

/// The embedded registry's protocol (PROTOCOL.md §7): the stream decoder, then the
/// service, as `byst registry serve` runs them for one client.
///
/// Input: `mode ‖ split ‖ stream bytes`. Mode bit 0 picks a registry in its restart grace
/// period; bits 1–2 which of three client names the stream is authenticated as; the third
/// may own no port (`RegistryPermissions`), the others any.
/// Invariants: every message re-encodes to itself; every reply encodes and decodes; per
/// client caps hold; a client without permissions never owns a port; once every lease has
/// run out nobody owns anything.
enum RegistryFuzz {
    static let limits = RegistryService.Limits(portsPerClient: 4, watchesPerClient: 4)

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let split = input.byte()
        var now: Nanoseconds = 1_000_000_000
        let grace: Duration = mode & 1 == 0 ? .zero : .seconds(10)
        let permissions = RegistryPermissions.unrestricted([RegistryClientID("branch-0"), RegistryClientID("branch-1")])
        var service = RegistryService(configuration: .init(lease: .seconds(5), grace: grace), now: now, limits: limits,
                                      permissions: permissions)
        let client = RegistryClientID("branch-\(Int(mode >> 1) % 3)")
        var decoder = RegistryMessageDecoder()
        var ports: Set<String> = []
        stream: for piece in Chunker.pieces(of: input.rest(), seed: split) {
            decoder.feed(ByteBuffer(bytes: piece))
            while true {
                let message: RegistryMessage
                do throws(RegistryWireError) {
                    guard let next = try decoder.next() else { continue stream }
                    message = next
                } catch {
                    break stream
                }
                checkRoundTrip(message)
                guard case .request(let id, let request) = message else { continue }
                now += UInt64(id % 4096) * 1_000_000
                if case .register(let port, _) = request { ports.insert(port) }
                let reply = service.handle(request, from: client, now: now)
                checkRoundTrip(.reply(id: id, reply))
                invariant(service.registry.ports(of: client).count <= limits.portsPerClient,
                          "\(service.registry.ports(of: client).count) ports for one client")
                invariant(permissions.mayOwn("any", client: client) || service.registry.ports(of: client).isEmpty,
                          "a client without permissions owns \(service.registry.ports(of: client))")
                for (_, notice) in service.notices(now: now) { checkRoundTrip(.notice(notice)) }
            }
        }
        service.streamClosed(client)
        now += 61 * 1_000_000_000
        for (_, notice) in service.notices(now: now) { checkRoundTrip(.notice(notice)) }
        for port in ports { invariant(service.registry.owner(of: port) == nil, "port \(port) outlived its owner's lease") }
    }

    static func checkRoundTrip(_ message: RegistryMessage) {
        var buffer = ByteBuffer()
        message.encode(into: &buffer)
        guard let length: UInt32 = buffer.readInteger() else { return invariant(false, "no length prefix") }
        invariant(Int(length) == buffer.readableBytes, "length prefix \(length) for \(buffer.readableBytes) bytes")
        let again = try? RegistryMessage.decode(body: buffer)
        invariant(again == message, "\(message) re-encodes to \(String(describing: again))")
    }
}
