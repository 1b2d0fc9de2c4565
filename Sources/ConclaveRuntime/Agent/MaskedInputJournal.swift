public import ConclaveFederation
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The silo's durable record of every (run, round) for which it sent a masked input. Local training is
/// deterministic, so the same update masked into a second sum over a different set of silos (a retried
/// attempt after a coordinator crash) would let the coordinator subtract the two sums and learn it. The entry is
/// on disk (fsync) before the masked input leaves; a task for a recorded round is declined, never trained.
public final class MaskedInputJournal: Sendable {
    public let path: String
    private let sent: Mutex<Set<String>>

    public init(path: String) throws(FederationError) {
        self.path = path
        var entries = Set<String>()
        if FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw FederationError(.failedPrecondition, "cannot read the masked-input journal \(path)")
            }
            for line in text.split(separator: "\n") where !line.isEmpty { entries.insert(String(line)) }
        }
        sent = Mutex(entries)
    }

    private static func key(run: String, round: Int) -> String { "\(run)\t\(round)" }

    public func hasSent(run: String, round: Int) -> Bool {
        sent.withLock { $0.contains(Self.key(run: run, round: round)) }
    }

    /// Appends and syncs the entry; throws (and the masked input must not be sent) if it cannot be made durable.
    public func record(run: String, round: Int) throws(FederationError) {
        let key = Self.key(run: run, round: round)
        guard !hasSent(run: run, round: round) else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw FederationError(.failedPrecondition, "cannot open the masked-input journal \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let line = Array((key + "\n").utf8)
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            throw FederationError(.failedPrecondition, "cannot write the masked-input journal \(path): \(String(cString: strerror(errno)))")
        }
        _ = sent.withLock { $0.insert(key) }
    }
}
