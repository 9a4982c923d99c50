import BYSTProto

extension SplitRegistry {
    /// Why a split-mode request is refused: its HTTP status, and the cap it hit if any
    /// (counted in `byst_limit_hits_total`).
    enum Refusal: Error, Equatable, CustomStringConvertible {
        case unknownToken
        case outOfOrder(expected: UInt64, got: UInt64)
        /// One of the last parts again, before it was received to its end (or it was cut short).
        case repeatOfUnfinished(UInt64)
        /// The next part, while the one before it is still arriving (or was cut short).
        case previousUnfinished(UInt64)
        /// The last part again, with other bytes.
        case repeatDiffers(UInt64)
        case downstreamTaken
        /// The bounds on unpaired tokens (`Limits`):
        case connectionHoldsUnpaired
        case sourceFull(HandshakeSource, cap: Int)
        case full(cap: Int)
        case tooMuchPending(cap: Int)
        case pendingFull(cap: Int)

        var status: (code: Int, reason: String) {
            switch self {
            case .unknownToken: (404, "Not Found")
            case .outOfOrder, .repeatOfUnfinished, .previousUnfinished, .repeatDiffers, .downstreamTaken: (409, "Conflict")
            case .connectionHoldsUnpaired, .sourceFull: (429, "Too Many Requests")
            case .full, .pendingFull: (503, "Service Unavailable")
            case .tooMuchPending: (413, "Content Too Large")
            }
        }

        var limit: ResourceLimit? {
            switch self {
            case .unknownToken, .outOfOrder, .repeatOfUnfinished, .previousUnfinished, .repeatDiffers, .downstreamTaken: nil
            case .connectionHoldsUnpaired: .splitUnpairedPerConnection
            case .sourceFull: .splitUnpairedPerSource
            case .full: .splitUnpaired
            case .tooMuchPending, .pendingFull: .splitPendingBytes
            }
        }

        var description: String {
            switch self {
            case .unknownToken: "no split link with this token (expired or closed)"
            case .outOfOrder(let expected, let got): "upstream part \(got) out of order (expected \(expected))"
            case .repeatOfUnfinished(let part): "upstream part \(part) sent again before it was received to its end"
            case .previousUnfinished(let part): "upstream part \(part + 1) began before part \(part) was received to its end"
            case .repeatDiffers(let part): "upstream part \(part) sent again with other bytes"
            case .downstreamTaken: "this link token already has a downstream"
            case .connectionHoldsUnpaired: "this connection already has a link token waiting for its GET"
            case .sourceFull(let source, let cap): "\(cap) link tokens from \(source) are waiting for their GET"
            case .full(let cap): "\(cap) link tokens are waiting for their GET"
            case .tooMuchPending(let cap): "over \(cap) upstream bytes for one link token before its GET"
            case .pendingFull(let cap): "\(cap) upstream bytes in all are waiting for their GETs"
            }
        }
    }
}
