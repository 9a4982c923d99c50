/// Which link carried each unacknowledged byte range of one stream, oldest first, so that a
/// link loss can tell which streams lost bytes there.
///
/// **Invariants**: segments are ordered by offset, do not overlap and start at or after the
/// stream's acknowledged offset; consecutive bytes on one link form one segment, so a
/// pinned stream keeps a single segment. The storage is reused: after the first few frames
/// of a striped stream, recording a frame allocates nothing.
struct SentSegments {
    struct Segment {
        let link: LinkID
        var start: UInt64
        var end: UInt64
    }

    private var segments: [Segment] = []
    /// Segments before this index are acknowledged (dropped lazily, in one move).
    private var head = 0

    var isEmpty: Bool { head == segments.count }

    mutating func record(link: LinkID, offset: UInt64, count: Int) {
        let end = offset + UInt64(count)
        if head < segments.count, segments[segments.count - 1].link == link, segments[segments.count - 1].end == offset {
            segments[segments.count - 1].end = end
        } else {
            segments.append(Segment(link: link, start: offset, end: end))
        }
    }

    /// Drops the bytes before `offset` (acknowledged).
    mutating func acknowledge(upTo offset: UInt64) {
        while head < segments.count, segments[head].start < offset {
            if segments[head].end <= offset {
                head += 1
            } else {
                segments[head].start = offset
                break
            }
        }
        compact()
    }

    /// Forgets every segment: the stream resends from its acknowledged offset.
    mutating func removeAll() {
        segments.removeAll(keepingCapacity: true)
        head = 0
    }

    func carries(on link: LinkID) -> Bool {
        segments[head...].contains { $0.link == link }
    }

    private mutating func compact() {
        if head == segments.count {
            segments.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32, head * 2 >= segments.count {
            segments.removeFirst(head)
            head = 0
        }
    }
}
