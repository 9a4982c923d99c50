@testable import BYSTProto

/// User-space segmentation of offloaded packets (GSOSegmenter), as a peer's `offloadPacket`
/// frame reaches it: `virtio-net header (10 bytes) ‖ packet`. A refused packet is an error
/// before any segment; every segment handed out is an IP packet whose length fields match
/// its bytes.
enum GSOFuzz {
    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let headerBytes = input.take(VirtioNetHeader.size)
        guard let header = VirtioNetHeader(headerBytes) else { return }
        let packet = input.rest()
        var scratch: [UInt8] = []
        var segments = 0
        do throws(GSOSegmenter.Failure) {
            try GSOSegmenter.forEachSegment(of: packet, header: header, scratch: &scratch) { segment in
                segments += 1
                guard header.isGSO else { return invariant(segment.count == packet.count, "a plain packet changed length") }
                invariant(IPPacket(segment) != nil, "a segment that is not an IP packet")
            }
        } catch {
            invariant(segments == 0, "a refused packet after \(segments) segments")
        }
    }
}
