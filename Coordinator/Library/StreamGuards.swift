import ConclaveSupport
import ConclaveWireConversions
import ConclaveFederation
import Synchronization

/// A counting semaphore for async code: at most a few updates are assembled at once, so coordinator memory
/// stays a small multiple of the model. Streams take a permit only once their header arrived and was checked,
/// so streams that send nothing cannot starve the ones that do.
actor UploadGate {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(permits: Int) { available = permits }

    func acquire() async {
        if available > 0 {
            available -= 1
        } else {
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    func release() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() }
    }
}

/// One upload or secure stream per silo at a time: a second one is refused (RESOURCE_EXHAUSTED) while the
/// first is open, so one silo cannot hold several permits or flood the phase mailboxes.
final class SiloStreams: Sendable {
    private let open = Mutex<Set<String>>([])

    func claim(_ silo: String, what: String) throws(FederationError) {
        let taken = open.withLock { !$0.insert(silo).inserted }
        if taken {
            throw FederationError(.resourceExhausted,
                "silo '\(silo)' already has an \(what) stream open; one at a time (close the other or wait for it)")
        }
    }

    func release(_ silo: String) {
        _ = open.withLock { $0.remove(silo) }
    }

}

/// The time of a stream's last message, for the idle watchdog.
final class Activity: Sendable {
    private struct State { var last = ContinuousClock.now; var paused = false }
    private let state = Mutex(State())

    /// A message arrived, or the coordinator answered and now waits for the peer's next one.
    func touch() { state.withLock { $0.last = .now; $0.paused = false } }

    /// The coordinator itself is working or waiting for a phase to close: the peer is not idle.
    func pause() { state.withLock { $0.paused = true } }

    /// When the peer was last heard from, or nil while the stream waits on the coordinator.
    var idleSince: ContinuousClock.Instant? { state.withLock { $0.paused ? nil : $0.last } }
}

/// Runs a stream handler under a read timeout: `body` calls `activity.touch()` whenever it received a message
/// (or finished answering one); if `timeout` passes without a touch, the body is cancelled and the call fails
/// with DEADLINE_EXCEEDED. A peer that opens a stream and goes quiet holds nothing for long.
func withIdleTimeout<T: Sendable>(_ timeout: Duration, what: String,
                                  _ body: @escaping @Sendable (Activity) async throws -> T) async throws -> T {
    let activity = Activity()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body(activity) }
        group.addTask {
            while true {
                guard let seen = activity.idleSince else {
                    try await Task.sleep(for: timeout)
                    continue
                }
                try await Task.sleep(until: seen + timeout, clock: .continuous)
                if activity.idleSince == seen {
                    throw FederationError(.deadlineExceeded,
                        "\(what) sent nothing for \(timeout.components.seconds) s; the stream is closed")
                }
            }
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw FederationError(.deadlineExceeded, "\(what) ended without a result")
        }
        return result
    }
}
