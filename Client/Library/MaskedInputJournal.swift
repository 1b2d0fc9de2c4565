import ConclaveCrypto
public import ConclaveFederation
import ConclaveSupport
import ConclaveWireConversions
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The silo's durable record of every (run, round) for which it sent a masked input. Local training is
/// deterministic, so the same update masked into a second sum over a different set of silos (a retried
/// attempt after a coordinator crash) would let the coordinator subtract the two sums and learn it. The entry is
/// on disk (fsync) before the masked input leaves; a task for a recorded round is declined, never trained.
/// Each entry is the attempt (its context) and the SHA-256 of the exact masked input sent: after a coordinator
/// restart the silo may send that same vector to that same attempt again (it adds nothing the coordinator did
/// not have), but never a masked input to another attempt of the round.
public final class MaskedInputJournal: Sendable {
    public let path: String
    /// "run\tround" → "context-hex\tsha256-hex".
    private let sent: Mutex<[String: String]>

    public init(path: String) throws(FederationError) {
        self.path = path
        var entries = [String: String]()
        if FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw FederationError(.failedPrecondition, "cannot read the masked-input journal \(path)")
            }
            for line in text.split(separator: "\n") where !line.isEmpty {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard fields.count >= 2 else { continue }
                entries[fields[0] + "\t" + fields[1]] = fields.dropFirst(2).joined(separator: "\t")
            }
        }
        sent = Mutex(entries)
    }

    private static func key(run: String, round: Int) -> String { "\(run)\t\(round)" }

    public func hasSent(run: String, round: Int) -> Bool {
        sent.withLock { $0[Self.key(run: run, round: round)] != nil }
    }

    private static func value(context: [UInt8], input: [UInt32]) -> String {
        context.hexString + "\t" + input.withUnsafeBytes { SHA256.hex($0) }
    }

    /// Whether this exact masked input may go to this attempt: nothing was sent for the round yet, or this very
    /// vector was sent to this very attempt (a resend after a coordinator restart).
    public func maySend(run: String, round: Int, context: [UInt8], input: [UInt32]) -> Bool {
        guard let recorded = sent.withLock({ $0[Self.key(run: run, round: round)] }) else { return true }
        return recorded == Self.value(context: context, input: input)
    }

    /// Appends and syncs the entry before the masked input leaves; throws (and it must not be sent) if it
    /// cannot be made durable, or if a different masked input was already sent for the round.
    public func record(run: String, round: Int, context: [UInt8], input: [UInt32]) throws(FederationError) {
        let key = Self.key(run: run, round: round)
        let value = Self.value(context: context, input: input)
        if let recorded = sent.withLock({ $0[key] }) {
            guard recorded == value else {
                throw FederationError(.failedPrecondition,
                    "this silo already sent a different masked input for round \(round) of run \(run); it is never masked into a second sum")
            }
            return
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw FederationError(.failedPrecondition, "cannot open the masked-input journal \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let line = Array((key + "\t" + value + "\n").utf8)
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            throw FederationError(.failedPrecondition, "cannot write the masked-input journal \(path): \(String(cString: strerror(errno)))")
        }
        sent.withLock { $0[key] = value }
    }
}
