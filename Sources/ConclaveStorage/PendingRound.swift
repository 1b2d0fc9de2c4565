public import ConclaveFederation
import Foundation

/// A round whose aggregate was computed and whose checkpoint is on disk, written beside the checkpoint before
/// the database commit: if the process dies between the two, start-up commits the round from this record
/// instead of running it again, so the silos that sent masked inputs for it are never asked again.
public struct PendingRound: Codable, Sendable, Equatable {
    public var runID: String
    public var round: Int
    public var checkpointSHA256: String
    public var contributions: [RoundStateMachine.Contribution]
    public var selected: [String]
    public var startedAt: Double
    public var closedAt: Double
    public var secure: RoundStateMachine.SecureSummary?
    public var privacy: RoundStateMachine.PrivacySpent?
    public var clipNorm: Double?
    public var nextClipNorm: Double?
    public var testAccuracy: Double?
    public var testLoss: Double?
    public var releases: [PrivacyRelease]?

    public init(runID: String, closed: RoundStateMachine.ClosedRound, checkpointSHA256: String,
                testAccuracy: Double?, testLoss: Double?) {
        self.runID = runID
        self.round = closed.number
        self.checkpointSHA256 = checkpointSHA256
        self.contributions = closed.contributions
        self.selected = closed.selected.sorted()
        self.startedAt = closed.startedAt
        self.closedAt = closed.closedAt
        self.secure = closed.secure
        self.privacy = closed.privacy
        self.clipNorm = closed.clipNorm
        self.nextClipNorm = closed.nextClipNorm
        self.testAccuracy = testAccuracy
        self.testLoss = testLoss
        self.releases = closed.releases
    }

    /// The closed round again, with the weights and optimizer state read back from its checkpoint.
    public func closedRound(_ checkpoint: CheckpointStore.Checkpoint) -> RoundStateMachine.ClosedRound {
        .init(number: round, contributions: contributions, selected: Set(selected), newWeights: checkpoint.weights,
              serverOptimizer: checkpoint.serverOptimizer, startedAt: startedAt, closedAt: closedAt, secure: secure,
              privacy: privacy, clipNorm: clipNorm, nextClipNorm: nextClipNorm, releases: releases ?? [])
    }
}

extension CheckpointStore {
    static let pendingSuffix = ".pending.json"

    /// Writes the record durably (temp file, fsync, rename) before the round's database commit.
    public func savePending(_ record: PendingRound) throws(StorageError) {
        let data: Data
        do { data = try JSONEncoder().encode(record) } catch { throw StorageError("cannot encode pending round: \(error)") }
        let target = "\(directory)/\(record.checkpointSHA256)\(Self.pendingSuffix)"
        try DurableFile.write(data, to: target, temp: "\(directory)/\(Self.tempPrefix)\(record.checkpointSHA256).pending")
    }

    public func removePending(sha256: String) {
        try? FileManager.default.removeItem(atPath: "\(directory)/\(sha256)\(Self.pendingSuffix)")
    }

    /// Every pending record in the directory; an unreadable one is removed (it was never committed).
    public func pendingRounds() -> [PendingRound] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(Self.pendingSuffix) }.sorted().compactMap { name in
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path),
                  let record = try? JSONDecoder().decode(PendingRound.self, from: data) else {
                try? FileManager.default.removeItem(atPath: path)
                return nil
            }
            return record
        }
    }
}
