import ConclaveIdentity
import Foundation
import Synchronization

/// When each identity last made an RPC, kept in memory and written to the database at most once a minute
/// per identity (a busy silo must not turn every poll into a write).
final class ContactLog: Sendable {
    private let seen = Mutex<[PeerIdentity: (at: Double, written: Double)]>([:])
    private let write: @Sendable (PeerIdentity, Double) -> Void

    init(write: @escaping @Sendable (PeerIdentity, Double) -> Void) { self.write = write }

    func touch(_ identity: PeerIdentity, now: Double = Date().timeIntervalSince1970) {
        let due = seen.withLock { map -> Bool in
            let last = map[identity]?.written ?? 0
            let due = now - last >= 60
            map[identity] = (now, due ? now : last)
            return due
        }
        if due { write(identity, now) }
    }

    func lastContact(_ identity: PeerIdentity) -> Double? { seen.withLock { $0[identity]?.at } }
}
