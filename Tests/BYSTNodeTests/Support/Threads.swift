import Foundation

/// Runs blocking socket work on its own thread, so it never occupies one of the few
/// cooperative threads that the nodes' async plumbing needs.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
    }
}
