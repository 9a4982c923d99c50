/// How much the data plane reads when epoll says the TUN is readable. Sparse packets (a
/// ping) leave no backlog, and a second read would only find the queue empty; so a wake is
/// taken as one packet, unless it comes this soon after the previous one — then traffic is
/// flowing, and the plane reads on to its budgets. A burst after a pause is read in full one
/// wake later, since epoll wakes the plane again at once (level-triggered).
enum TunReadPolicy {
    static let backlogLookNanoseconds: UInt64 = 1_000_000

    static func wakeShouldLookForBacklog(sincePreviousWake elapsed: UInt64) -> Bool {
        elapsed < backlogLookNanoseconds
    }
}
