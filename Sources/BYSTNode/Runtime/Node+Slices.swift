// Work over every peer of a big hub (a full status, a metrics refresh) in slices, one event
// loop tick each: links' timers and records run between the slices, so a request never holds
// the loop long (`byst_event_loop_lag_seconds`; docs/PERFORMANCE.md "A hub for many branches").
import NIOCore

extension Node {
    /// Peers handled per loop tick: a few milliseconds of work at most.
    static let peersPerSlice = 500

    /// `transform` of every element of `items`, `perSlice` per loop tick, then `done` with
    /// the results in order. Event loop only.
    func mapSliced<Item, Result>(_ items: [Item], perSlice: Int = Node.peersPerSlice, _ transform: @escaping (Item) -> Result,
                                 then done: @escaping ([Result]) -> Void) {
        var results: [Result] = []
        results.reserveCapacity(items.count)
        let loop = eventLoop.assumeIsolated()
        func step(from start: Int) {
            let end = min(start + perSlice, items.count)
            for item in items[start..<end] { results.append(transform(item)) }
            guard end < items.count else { return done(results) }
            loop.execute { step(from: end) }
        }
        step(from: 0)
    }
}
