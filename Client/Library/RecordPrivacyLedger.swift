import ConclaveFederation
import ConclaveLearning
import ConclaveSupport
import ConclaveWireConversions
import Foundation

/// The silo's own account of what record-mode runs have spent on its data, in a JSON file it alone writes.
/// Every update is charged — and the charge written to disk — before it leaves the silo, so a crash or a
/// restart never forgets a release; a run may not change its privacy parameters once the silo has trained in
/// it, and a silo never trains in more rounds than its plan was calibrated for.
actor RecordPrivacyLedger {
    struct Entry: Codable, Equatable {
        var privacy: PrivacyConfig
        var examples: Int
        var training: TrainingConfig
        var plan: RecordPrivacyPlan
        var roundsTrained: Int
        var spent: SiloPrivacy?
    }

    let path: String
    let maxEpsilon: Double?
    private var runs: [String: Entry]

    init(path: String, maxEpsilon: Double?) throws(FederationError) {
        self.path = path
        self.maxEpsilon = maxEpsilon
        guard FileManager.default.fileExists(atPath: path) else {
            runs = [:]
            return
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            runs = try JSONDecoder().decode([String: Entry].self, from: data)
        } catch {
            throw FederationError(.invalidArgument,
                "privacy ledger \(path) is unreadable (\(error)); it records what this silo's data has spent — restore it, do not delete it")
        }
    }

    /// This silo's plan for a run: the stored one, or a new one (calibrated once, then kept).
    func plan(runID: String, privacy: PrivacyConfig, examples: Int, training: TrainingConfig,
              plannedRounds: Int) throws(FederationError) -> RecordPrivacyPlan {
        if let entry = runs[runID] {
            guard entry.privacy == privacy, entry.examples == examples, entry.training == training,
                  entry.plan.plannedRounds == plannedRounds else {
                throw FederationError(.failedPrecondition,
                    "run '\(runID)' changed its privacy or training parameters (or this silo's data changed) after this silo trained in it; refusing to train")
            }
            return entry.plan
        }
        let plan = try RecordPrivacyPlan(privacy: privacy, examples: examples, training: training, plannedRounds: plannedRounds)
        if let cap = maxEpsilon {
            let planned = plan.spent(afterRounds: plannedRounds).epsilon
            guard planned <= cap * (1 + 1e-9) else {
                throw FederationError(.failedPrecondition, String(format:
                    "run '%@' would spend ε = %.3f on this silo's records over %d rounds, above this silo's privacy.max_epsilon = %g",
                    runID, planned, plannedRounds, cap))
            }
        }
        runs[runID] = Entry(privacy: privacy, examples: examples, training: training, plan: plan, roundsTrained: 0, spent: nil)
        return plan
    }

    /// Before one round's update may leave: refuses beyond the planned rounds, else records the round on disk
    /// and returns the cumulative spend to report.
    func charge(runID: String) throws(FederationError) -> SiloPrivacy {
        guard var entry = runs[runID] else {
            throw FederationError(.failedPrecondition, "no privacy plan for run '\(runID)'")
        }
        guard entry.roundsTrained < entry.plan.plannedRounds else {
            throw FederationError(.failedPrecondition, String(format:
                "run '%@': this silo has trained in all %d rounds its privacy budget was planned for (ε = %.3f spent); no further updates",
                runID, entry.plan.plannedRounds, entry.spent?.epsilon ?? 0))
        }
        entry.roundsTrained += 1
        let spent = entry.plan.spent(afterRounds: entry.roundsTrained)
        entry.spent = spent
        var updated = runs
        updated[runID] = entry
        try persist(updated)
        runs = updated
        return spent
    }

    /// Writes the whole ledger to a temporary file and renames it over the old one: never half-written.
    private func persist(_ ledger: [String: Entry]) throws(FederationError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(ledger)
            let temporary = path + ".tmp"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            throw FederationError(.failedPrecondition, "cannot write the privacy ledger \(path): \(error); the update is not sent")
        }
    }
}
