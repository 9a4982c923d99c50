// Work over every peer of a big hub (a full status, a metrics refresh) in slices, one event
// loop tick each: links' timers and records run between the slices, so a request never holds
// the loop long (`byst_event_loop_lag_seconds`; docs/PERFORMANCE.md "A hub for many branches").
import NIOCore

extension Node {
    /// Peers handled per loop tick at most.
    static let peersPerSlice = 500
    /// A tick's time for a slice: 500 idle peers take well under it, 500 busy ones (a full
    /// status of peers with links up) could take 10 ms, so a slice also ends when it is spent.
    static let sliceBudgetNanoseconds: UInt64 = 2_000_000

    /// `transform` of every element of `items`, at most `perSlice` and about
    /// `sliceBudgetNanoseconds` per loop tick, then `done` with the results in order. Event
    /// loop only.
    func mapSliced<Item, Result>(_ items: [Item], perSlice: Int = Node.peersPerSlice, _ transform: @escaping (Item) -> Result,
                                 then done: @escaping ([Result]) -> Void) {
        var results: [Result] = []
        results.reserveCapacity(items.count)
        let loop = eventLoop.assumeIsolated()
        func step(from start: Int) {
            let deadline = Clocks.monotonic() + Self.sliceBudgetNanoseconds
            let last = min(start + perSlice, items.count)
            var next = start
            repeat {
                results.append(transform(items[next]))
                next += 1
            } while next < last && Clocks.monotonic() < deadline
            guard next < items.count else { return done(results) }
            loop.execute { step(from: next) }
        }
        guard !items.isEmpty else { return done(results) }
        step(from: 0)
    }
}
