/// Cryptokey routing (docs/ARCHITECTURE.md §4.2): which peer a destination belongs to, by longest
/// prefix, and whether a source address is one a peer may use.
///
/// **Shape**: one hash table per prefix length in use, per family, looked up from the longest
/// length down; the first hit is the longest match. A lookup costs one hash probe per distinct
/// length (a hub's 10,000 branch /32s and /24s are two probes), whatever the number of
/// prefixes, and an insert is one probe. Equal prefixes keep the first peer inserted.
/// `@inlinable`: called from the data plane in another module, it is specialized there
/// instead of running through generic metadata per packet.
public struct AllowedIPs<Peer: Sendable>: Sendable {
    @usableFromInline var v4 = PrefixTable<UInt32>()
    @usableFromInline var v6 = PrefixTable<IPv6Bits>()
    @usableFromInline var peers: [Peer] = []

    public init() {}

    public mutating func insert(_ prefix: IPPrefix, peer: Peer) {
        let inserted = prefix.isIPv6
            ? v6.insert(IPv6Bits(prefix.address).masked(to: prefix.length), length: prefix.length, entry: peers.count)
            : v4.insert(IPv4Bits.value(prefix.address) & IPv4Bits.mask(prefix.length), length: prefix.length, entry: peers.count)
        if inserted { peers.append(peer) }
    }

    /// The peer whose prefixes hold `address` most specifically.
    public func lookup(_ address: some Collection<UInt8>) -> Peer? {
        lookup(ArraySlice(address))
    }

    /// `lookup` for the address slices `IPPacket` gives (concrete: no generic dispatch per packet).
    @inlinable
    public func lookup(_ address: ArraySlice<UInt8>) -> Peer? {
        let entry: Int?
        switch address.count {
        case 4:
            let bits = IPv4Bits.value(address)
            entry = v4.lookup { bits & IPv4Bits.mask($0) }
        case 16:
            let bits = IPv6Bits(address)
            entry = v6.lookup { bits.masked(to: $0) }
        default:
            return nil
        }
        return entry.map { peers[$0] }
    }

    /// Distinct prefixes held.
    public var count: Int { peers.count }
}

/// One family's prefixes: a table per length, longest length first.
@usableFromInline
struct PrefixTable<Bits: Hashable & Sendable>: Sendable {
    @usableFromInline var lengths: [Int] = []
    @usableFromInline var tables: [[Bits: Int]] = []

    /// False if the prefix was already there (the first entry keeps it).
    mutating func insert(_ bits: Bits, length: Int, entry: Int) -> Bool {
        let index: Int
        if let found = lengths.firstIndex(of: length) {
            index = found
        } else {
            index = lengths.firstIndex { $0 < length } ?? lengths.count
            lengths.insert(length, at: index)
            tables.insert([:], at: index)
        }
        guard tables[index][bits] == nil else { return false }
        tables[index][bits] = entry
        return true
    }

    /// The entry of the longest prefix holding the address `masked` gives for each length.
    @inlinable
    func lookup(_ masked: (Int) -> Bits) -> Int? {
        for index in lengths.indices {
            if let entry = tables[index][masked(lengths[index])] { return entry }
        }
        return nil
    }
}

@usableFromInline
enum IPv4Bits {
    @inlinable
    static func value<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    @inlinable
    static func mask(_ length: Int) -> UInt32 {
        length == 0 ? 0 : ~UInt32(0) << (32 - length)
    }
}

/// An IPv6 address as two 64-bit halves.
@usableFromInline
struct IPv6Bits: Hashable, Sendable {
    @usableFromInline var high: UInt64
    @usableFromInline var low: UInt64

    @inlinable
    init<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.high = high
        self.low = low
    }

    @inlinable
    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    @inlinable
    func masked(to length: Int) -> IPv6Bits {
        let highMask: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~UInt64(0) << (64 - length))
        let lowMask: UInt64 = length <= 64 ? 0 : (length >= 128 ? ~0 : ~UInt64(0) << (128 - length))
        return IPv6Bits(high: high & highMask, low: low & lowMask)
    }
}
