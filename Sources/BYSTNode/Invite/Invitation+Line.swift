import BYSTProto

/// The invitation as one line (PROTOCOL.md §2.4):
///
///     "bystinv1_" ‖ base64url_nopad( payload ‖ SHA-256("BYST invitation v1" ‖ payload)[0..4) )
///     payload = PSK(32) ‖ str(hub) ‖ str(branch) ‖ u8 links
///               ‖ list(endpoints) ‖ list(tun addresses) ‖ list(routes)
///     str     = u16 length (big endian) ‖ UTF-8 bytes;  list = u8 count ‖ str…
///
/// Values are written as in the config file (`byst://…`, `10.0.0.2/24`). A reader refuses
/// trailing bytes and any value the `Invitation` invariants exclude.
extension Invitation {
    public static let prefix = "bystinv1_"
    static let checksumLabel = Array("BYST invitation v1".utf8)

    public enum Problem: Error, CustomStringConvertible, Equatable {
        case missingPrefix
        /// A `bystk1_` key where an invitation was expected.
        case isAKey
        case notBase64
        case checksumMismatch
        case malformed(String)
        case weakKey

        public var description: String {
            switch self {
            case .missingPrefix: "not a BYST invitation: it must start with \(Invitation.prefix)"
            case .isAKey: "this is a key (\(KeyExport.prefix)…), not an invitation: store it with byst key import NAME"
            case .notBase64: "not a BYST invitation: bad characters after \(Invitation.prefix)"
            case .checksumMismatch: "BYST invitation checksum does not match (mistyped or truncated copy?)"
            case .malformed(let what): "malformed BYST invitation: \(what)"
            case .weakKey: "refusing an invitation with a weak key (all zeros or patterned)"
            }
        }
    }

    /// The line. (The returned `String` cannot be wiped; the byte copies made on the way are.)
    public func encoded() -> String {
        var payload = key.secret.revealedBytes
        defer { SecretBytes.wipe(&payload) }
        payload.appendString(hubName)
        payload.appendString(branchName)
        payload.append(UInt8(clamping: links))
        for list in [endpoints.map(\.description), addresses.map(\.description), routes.map(\.description)] {
            payload.append(UInt8(clamping: list.count))
            for item in list { payload.appendString(item) }
        }
        return ChecksummedString.encode(payload, prefix: Self.prefix, label: Self.checksumLabel)
    }

    public static func decode(_ text: String) throws(Problem) -> Invitation {
        var payload: [UInt8]
        do throws(ChecksummedString.Problem) {
            payload = try ChecksummedString.decode(text, prefix: prefix, label: checksumLabel)
        } catch {
            switch error {
            case .missingPrefix: throw text.trimmingASCIIWhitespace().hasPrefix(KeyExport.prefix) ? .isAKey : .missingPrefix
            case .notBase64: throw .notBase64
            case .truncated, .tooShort, .checksumMismatch: throw .checksumMismatch
            }
        }
        defer { SecretBytes.wipe(&payload) }
        var reader = PayloadReader(bytes: payload[...])
        guard var secret = reader.take(PreSharedKey.size) else { throw .malformed("shorter than a key") }
        defer { SecretBytes.wipe(&secret) }
        let key: PreSharedKey
        do { key = try PreSharedKey(secret: SecretBytes(secret)) } catch { throw .weakKey }
        guard let hubName = reader.string(), let branchName = reader.string(), let links = reader.byte(),
              let endpointTexts = reader.list(), let addressTexts = reader.list(), let routeTexts = reader.list()
        else { throw .malformed("it ends early") }
        guard reader.isAtEnd else { throw .malformed("bytes after its last field") }
        var endpoints: [Endpoint] = []
        for text in endpointTexts {
            guard case .success(let endpoint) = Endpoint.parse(text) else { throw .malformed("endpoint \(text.configQuoted)") }
            endpoints.append(endpoint)
        }
        let addresses = try addressTexts.map { (text: String) throws(Problem) -> IPPrefix in
            guard case .success(let prefix) = IPPrefix.parseInterfaceAddress(text) else { throw .malformed("address \(text.configQuoted)") }
            return prefix
        }
        let routes = try routeTexts.map { (text: String) throws(Problem) -> IPPrefix in
            guard case .success(let prefix) = IPPrefix.parseAllowedIP(text) else { throw .malformed("route \(text.configQuoted)") }
            return prefix
        }
        let invitation = Invitation(key: key, hubName: hubName, branchName: branchName, endpoints: endpoints,
                                    links: Int(links), addresses: addresses, routes: routes)
        if let problem = invitation.invariantViolation { throw .malformed(problem) }
        return invitation
    }

    /// What breaks the type's invariants, or nil (the address and route forms are the parsers').
    var invariantViolation: String? {
        for name in [hubName, branchName] where !KeyStore.isValidName(name) {
            return "name \(name.configQuoted) (1-63 letters, digits, '.', '_' or '-', starting with a letter or digit)"
        }
        if hubName == branchName { return "the hub and the branch are both named \(hubName.configQuoted)" }
        if endpoints.isEmpty { return "no endpoint to dial" }
        if let port = endpoints.first(where: { $0.portName != nil }) {
            return "endpoint \(port.description.configQuoted): port:NAME endpoints need a registry, which invitations do not carry"
        }
        if !PeerConfig.linksRange.contains(links) { return "links \(links) (1…64)" }
        if addresses.isEmpty, !routes.isEmpty { return "routes without a TUN address" }
        // The payload's bounds: u8 counts, u16 string lengths.
        if [endpoints.count, addresses.count, routes.count].contains(where: { $0 > Int(UInt8.max) }) {
            return "more than \(UInt8.max) endpoints, addresses or routes"
        }
        if let long = endpoints.first(where: { $0.description.utf8.count > Int(UInt16.max) }) {
            return "endpoint of \(long.description.utf8.count) bytes"
        }
        return nil
    }
}

/// Reads the payload's fields in order; nil when a field runs past the end.
private struct PayloadReader {
    var bytes: ArraySlice<UInt8>

    var isAtEnd: Bool { bytes.isEmpty }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard bytes.count >= count else { return nil }
        defer { bytes = bytes.dropFirst(count) }
        return Array(bytes.prefix(count))
    }

    mutating func byte() -> UInt8? { take(1)?.first }

    mutating func string() -> String? {
        guard let length = take(2), let text = take(Int(length[0]) << 8 | Int(length[1])) else { return nil }
        return String(validating: text, as: UTF8.self)
    }

    mutating func list() -> [String]? {
        guard let count = byte() else { return nil }
        var items: [String] = []
        for _ in 0..<count {
            guard let item = string() else { return nil }
            items.append(item)
        }
        return items
    }
}

extension [UInt8] {
    /// `str` of the payload: a u16 length, then the UTF-8 bytes (`invariantViolation`
    /// keeps values within the u16).
    fileprivate mutating func appendString(_ text: String) {
        let bytes = Array(text.utf8.prefix(Int(UInt16.max)))
        append(UInt8(bytes.count >> 8))
        append(UInt8(bytes.count & 0xFF))
        append(contentsOf: bytes)
    }
}
