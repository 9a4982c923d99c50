import NIOCore

/// `struct virtio_net_hdr` (10 bytes) that a TUN with `IFF_VNET_HDR` puts before each
/// packet (linux/virtio_net.h): whether the transport checksum is still to be computed
/// (`NEEDS_CSUM`, from `csumStart`, stored at `csumStart + csumOffset`) and whether the
/// packet is a GSO super-packet to be cut into `gsoSize`-byte segments.
///
/// Fields are little-endian (the TUN uses the host's order, little-endian on the machines
/// BYST runs on; PROTOCOL.md §5.4 fixes little-endian on the wire).
public struct VirtioNetHeader: Sendable, Equatable {
    public static let size = 10
    /// `flags`: the transport checksum is partial (pseudo-header sum only).
    public static let needsChecksum: UInt8 = 1
    /// `gsoType` values (the low 7 bits) and the ECN bit.
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoUDPL4: UInt8 = 5
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8
    public var gsoType: UInt8
    /// Length of the headers (IP + transport) of each segment.
    public var headerLength: UInt16
    /// Payload bytes per segment.
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// A plain packet: checksums complete, no segmentation.
    public static let plain = VirtioNetHeader()

    public var isGSO: Bool { gsoType & ~Self.gsoECN != Self.gsoNone }
    public var needsChecksum: Bool { flags & Self.needsChecksum != 0 }

    /// Reads the header at the start of `bytes` (at least `size` bytes).
    public init?<Bytes: RandomAccessCollection>(_ bytes: Bytes) where Bytes.Element == UInt8, Bytes.Index == Int {
        guard bytes.count >= Self.size else { return nil }
        let base = bytes.startIndex
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[base + at]) | UInt16(bytes[base + at + 1]) << 8 }
        self.init(flags: bytes[base], gsoType: bytes[base + 1], headerLength: u16(2), gsoSize: u16(4),
                  checksumStart: u16(6), checksumOffset: u16(8))
    }

    /// Reads the header at the start of `bytes` (at least `size` bytes). Concrete, for the
    /// per-packet paths: the generic initializer allocates for each byte it reads there.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        self.init(flags: bytes[0], gsoType: bytes[1], headerLength: u16(2), gsoSize: u16(4),
                  checksumStart: u16(6), checksumOffset: u16(8))
    }

    /// Reads the header at the start of `buffer`'s readable bytes.
    public init?(_ buffer: ByteBuffer) {
        guard let header = buffer.withUnsafeReadableBytes({ VirtioNetHeader($0) }) else { return nil }
        self = header
    }

    /// Appends the 10 bytes, little-endian.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(flags)
        buffer.writeInteger(gsoType)
        buffer.writeInteger(headerLength, endianness: .little)
        buffer.writeInteger(gsoSize, endianness: .little)
        buffer.writeInteger(checksumStart, endianness: .little)
        buffer.writeInteger(checksumOffset, endianness: .little)
    }

    /// The 10 bytes, little-endian.
    public var bytes: [UInt8] {
        func le(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
        return [flags, gsoType] + le(headerLength) + le(gsoSize) + le(checksumStart) + le(checksumOffset)
    }
}
