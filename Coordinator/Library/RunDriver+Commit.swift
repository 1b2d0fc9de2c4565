import ConclaveCrypto
public import ConclaveFederation
import ConclaveLearning
public import ConclaveStorage
import ConclaveSupport
import ConclaveWireConversions
import ConclavePrivacy
import Foundation
import Logging

/// A round whose aggregate is computed and must become durable. It is kept (never recomputed) until the
/// commit succeeds: a storage fault delays the round, it does not make the silos train or spend privacy again.
struct PendingCommit: Sendable {
    let closed: RoundStateMachine.ClosedRound
    /// Evaluated once; the score does not change between retries.
    var evaluation: (accuracy: Double, loss: Double)?
    var evaluated = false
    var failures = 0
    var nextTry = 0.0

    init(closed: RoundStateMachine.ClosedRound) { self.closed = closed }

    /// Exponential backoff: 0.5 s, 1 s, 2 s, … up to 30 s between attempts.
    var backoffSeconds: Double { min(30, 0.5 * pow(2, Double(max(0, failures - 1)))) }
}

extension RunDriver {
    /// Writes the pending round (checkpoint, then one transaction); on failure keeps it and schedules a retry.
    func commitPending() {
        guard var pending = pendingCommit, machine != nil else { return }
        let closed = pending.closed
        do {
            try persist(&pending)
        } catch let refusal as LedgerRefusal {
            pendingCommit = nil
            refuseRound(refusal, round: closed.number)
            return
        } catch {
            pending.failures += 1
            metrics.commitFault()
            pending.nextTry = WallClock.now() + pending.backoffSeconds
            pendingCommit = pending
            let reason = "\(error)"
            storageFault = "storage fault: \(reason)"
            // Once per backoff step, not per poll.
            logger.error("round aggregated but not saved; keeping it and retrying",
                         metadata: ["run": "\(machine!.runID)", "round": "\(closed.number)", "error": "\(reason)",
                                    "attempt": "\(pending.failures)", "retry_seconds": "\(pending.backoffSeconds)"])
            try? store.setStatus(run: machine!.runID, "running", message: "storage fault: \(reason)")
            mailbox.resolveAll(.failed("round \(closed.number) was aggregated but saving it failed (storage fault); the coordinator keeps it and retries — do not train again"))
            return
        }
        pendingCommit = nil
        if storageFault != nil {
            logger.notice("storage recovered; round saved", metadata: ["run": "\(machine!.runID)", "round": "\(closed.number)"])
            storageFault = nil
        }
        machine!.roundCommitted()
        metrics.roundCommitted(seconds: WallClock.now() - closed.startedAt)
        if let privacy = closed.privacy { metrics.privacySpent(run: machine!.runID, epsilon: privacy.epsilon) }
        attemptEnded("committed", round: closed.number, reason: "")
        mailbox.resolveAll(.result(completed: true, message: "round \(closed.number) committed",
                                   unmasked: closed.secure?.unmasked ?? 0, dropped: closed.secure?.dropped ?? 0))
        if machine!.isFinished {
            logger.info("run completed", metadata: ["run": "\(machine!.runID)", "rounds": "\(machine!.completedRounds)"])
            machine = nil
            evaluation = nil
            resume()
        }
    }

    func retryCommitIfDue() {
        guard let pending = pendingCommit, WallClock.now() >= pending.nextTry else { return }
        commitPending()
    }

    private func persist(_ pending: inout PendingCommit) throws {
        let m = machine!
        let closed = pending.closed
        if !pending.evaluated {
            pending.evaluation = try evaluation.map { data throws(DataError) in
                let r = try Evaluator.evaluate(spec: m.spec.model, parameters: closed.newWeights, data: data)
                return (r.accuracy, r.loss)
            }
            pending.evaluated = true
        }
        let result = pending.evaluation
        let sha = try checkpoints.save(model: m.spec.model, weights: closed.newWeights,
                                       serverOptimizer: closed.serverOptimizer, runID: m.runID, round: closed.number)
        try checkpoints.savePending(PendingRound(runID: m.runID, closed: closed, checkpointSHA256: sha,
                                                 testAccuracy: result?.accuracy, testLoss: result?.loss))
        CrashHook.reach("checkpoint-written")
        let charged: (PrivacyLedger, [SignedEntry])
        do { charged = try draftCharges(closed.releases, runID: m.runID, round: closed.number, modelSHA256: sha) } catch let refusal as LedgerRefusal {
            checkpoints.removePending(sha256: sha)
            throw refusal
        }
        CrashHook.reach("ledger-charged")
        try store.commitRound(run: m.runID, closed: closed, checkpointSHA256: sha, checkpointPath: checkpoints.path(for: sha),
                              testAccuracy: result?.accuracy, testLoss: result?.loss, roundsPlanned: m.spec.rounds,
                              now: WallClock.now(), ledger: charged.1)
        ledger = charged.0
        checkpoints.removePending(sha256: sha)
        var meta: Logger.Metadata = ["run": "\(m.runID)", "round": "\(closed.number)",
                                     "silos": "\(closed.contributions.count)", "examples": "\(closed.examples)",
                                     "checkpoint": "\(sha.prefix(16))",
                                     "seconds": "\(Double(Int((closed.closedAt - closed.startedAt) * 100)) / 100)"]
        if let result { meta["test_accuracy"] = "\(result.accuracy)" }
        if let privacy = closed.privacy {
            meta["epsilon"] = "\(privacy.epsilon)"
            meta["delta"] = "\(privacy.delta)"
        }
        if let secure = closed.secure {
            meta["unmasked"] = "\(secure.unmasked)"
            meta["dropped"] = "\(secure.dropped)"
        }
        logger.info("round closed", metadata: meta)
    }
}

/// Start-up and repair: what the daemon checks before it listens, and the operator's resume.
extension RunDriver {
    /// Before listening: the database and the checkpoint directory must be writable (else the daemon exits
    /// naming the path); attempts a crash left open are recorded as abandoned; temp files and checkpoints no
    /// committed round references are removed, each logged.
    public func prepare() throws {
        try store.checkWritable()
        try checkpoints.checkWritable()
        do { try openLedger() } catch {
            // The daemon still starts, so `budget verify` can name the entry at fault; no DP release is made.
            logger.critical("the privacy ledger cannot be used; differentially private rounds are refused until it is restored",
                            metadata: ["error": "\(error.message)"])
        }
        try commitPendingRounds()
        let attempts = attemptsDirectory
        let crashed = try store.closeCrashedAttempts(now: WallClock.now()) { run, round in
            FileManager.default.fileExists(atPath: SecureAttemptLog.path(directory: attempts, runID: run, round: round))
        }
        if crashed > 0 { logger.warning("attempts abandoned by a crash recorded", metadata: ["count": "\(crashed)"]) }
        for file in try checkpoints.removeOrphans(keeping: try store.referencedCheckpoints()) {
            logger.warning("orphan checkpoint file removed", metadata: ["path": "\(file)"])
        }
    }

    /// Rounds whose aggregate and checkpoint reached the disk but whose database commit did not (a crash in
    /// between): committed now from their records, so they are not run again.
    private func commitPendingRounds() throws {
        for record in checkpoints.pendingRounds() {
            defer { checkpoints.removePending(sha256: record.checkpointSHA256) }
            guard let run = try store.run(id: record.runID), run.completedRounds == record.round - 1 else { continue }
            let checkpoint: CheckpointStore.Checkpoint
            do {
                checkpoint = try checkpoints.load(sha256: record.checkpointSHA256, model: run.spec.model, server: run.spec.server)
            } catch {
                logger.warning("pending round's checkpoint does not verify; the round runs again",
                               metadata: ["run": "\(record.runID)", "round": "\(record.round)", "error": "\(error.message)"])
                continue
            }
            let closed = record.closedRound(checkpoint)
            let charged: (PrivacyLedger, [SignedEntry])
            do {
                charged = try draftCharges(closed.releases, runID: record.runID, round: record.round, modelSHA256: record.checkpointSHA256)
            } catch {
                logger.warning("pending round's releases do not fit their budgets; the round is not released",
                               metadata: ["run": "\(record.runID)", "round": "\(record.round)", "error": "\(error)"])
                continue
            }
            try store.commitRound(run: record.runID, closed: closed, checkpointSHA256: record.checkpointSHA256,
                                  checkpointPath: checkpoints.path(for: record.checkpointSHA256), testAccuracy: record.testAccuracy,
                                  testLoss: record.testLoss, roundsPlanned: run.spec.rounds, now: WallClock.now(), ledger: charged.1)
            ledger = charged.0
            try store.closeOpenAttempt(run: record.runID, round: record.round, outcome: "committed",
                                       reason: "committed at restart from its pending record", now: WallClock.now())
            logger.notice("round committed from its pending record after a crash",
                          metadata: ["run": "\(record.runID)", "round": "\(record.round)"])
        }
    }

    /// `conclave run resume RUN_ID --from-round N`: the operator's explicit choice to go on from an earlier
    /// committed round whose checkpoint verifies. Later rounds are discarded; what they released stays charged.
    public func resumeRun(_ runID: String, fromRound round: Int) throws -> CoordinatorStore.RunRecord {
        guard let record = try store.run(id: runID) else { throw FederationError(.notFound, "no run '\(runID)'") }
        guard record.status == "needs-repair" else {
            throw FederationError(.failedPrecondition,
                "run '\(runID)' is \(record.status); only a run that needs repair can be resumed from an earlier round")
        }
        let rounds = try store.rounds(run: runID)
        if round > 0 {
            guard let chosen = rounds.first(where: { $0.round == round }) else {
                throw FederationError(.notFound, "run '\(runID)' has no committed round \(round) (it has \(rounds.count))")
            }
            do {
                _ = try checkpoints.load(sha256: chosen.checkpointSHA256, model: record.spec.model, server: record.spec.server)
            } catch {
                throw FederationError(.failedPrecondition, "round \(round) cannot be resumed from: \(error.message)")
            }
        }
        try store.rewind(run: runID, toRound: round, reason: "resumed from round \(round) by the operator",
                         now: WallClock.now())
        unresumable.remove(runID)
        logger.notice("run resumed from an earlier round", metadata: ["run": "\(runID)", "from_round": "\(round)",
                                                                      "discarded": "\(rounds.count - round)"])
        if machine == nil { resume() }
        guard let updated = try store.run(id: runID) else { throw StorageError("run \(runID) vanished") }
        return updated
    }
}
