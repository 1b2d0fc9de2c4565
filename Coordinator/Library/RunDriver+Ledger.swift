import ConclaveCrypto
import ConclaveConfig
public import ConclaveFederation
public import ConclavePrivacy
import ConclaveStorage
import ConclaveSupport
import Foundation
import Logging

/// A round whose releases the privacy ledger refused at commit (a budget spent since the round opened): the
/// round is not released; the refusals are recorded and those silos left out.
struct LedgerRefusal: Error {
    var entries: [SignedEntry]
    var reasons: [String: String]
}

/// The privacy ledger inside the driver, the database's only writer: budgets are checked before a silo is
/// selected, and a round's charges are appended in the same transaction that commits its model version, so a
/// crash can delay a release but never release uncharged or charge twice.
extension RunDriver {
    /// Replays the stored ledger once (checking its chain) and loads or creates the signing key.
    func openLedger() throws(FederationError) {
        guard !ledgerReady else { return }
        _ = try ledgerSigningKey()
        let stored: [SignedEntry]
        do { stored = try store.ledgerEntries() } catch {
            throw FederationError(.unavailable, "cannot read the privacy ledger: \(error.message)")
        }
        let chain = LedgerVerifier.chain(stored)
        guard chain.passed else { throw FederationError(.failedPrecondition, "the privacy ledger does not verify: \(chain.detail)") }
        do { ledger = try PrivacyLedger(replaying: stored) } catch {
            throw FederationError(.failedPrecondition, "the privacy ledger does not replay: \(error.message)")
        }
        ledgerReady = true
    }

    /// The coordinator's ledger key (Ed25519, 0600), created on first use.
    func ledgerSigningKey() throws(FederationError) -> Ed25519KeyPair {
        if let ledgerKey { return ledgerKey }
        let path = config.ledgerKeyPath.isEmpty ? config.database + ".ledger-key" : config.ledgerKeyPath
        let (key, created) = try IdentityKeyFile.loadOrCreate(path: path)
        if created { logger.notice("privacy ledger signing key created", metadata: ["path": "\(path)"]) }
        ledgerKey = key
        return key
    }

    /// Test-only: shows that a silo refuses on its own when the coordinator does not check (never set in use).
    static let bypassBudgetCheck = ProcessInfo.processInfo.environment["CONCLAVE_TEST_BYPASS_BUDGET_CHECK"] == "1"

    var ledgerSigner: PrivacyLedger.Signer {
        let key = ledgerKey!
        return { ["coordinator": key.sign($0)] }
    }

    /// Before a round opens: a silo whose budget cannot afford the round's release (or, with
    /// `require_budgets`, has none) is left out of the run, once, with the refusal in the ledger.
    func gateBudget(_ silo: SiloInfo, now: Double) {
        if Self.bypassBudgetCheck { return }
        guard let m = machine, m.spec.privacy != nil, m.openRoundNumber == nil, !m.isFinished, m.unaffordable[silo.id] == nil else { return }
        do { try openLedger() } catch {
            machine!.leaveOut(silo.id, reason: error.message)
            return
        }
        guard let release = machine!.plannedRelease(for: silo) else { return }
        guard let filter = ledger.filters[release.budget] else {
            if config.requireBudgets {
                leaveOut(silo.id, "no privacy budget is registered for \(release.budget) (a privacy officer registers one: conclave budget register --silo \(release.silo) --dataset \(release.dataset) --unit \(release.unit) --epsilon E --delta D)")
            }
            return
        }
        guard !filter.admits(filter.increment(release.mechanism.rdp).atOrder) else { return }
        var next = ledger
        do {
            let (entry, _) = try next.charge(release.budget, mechanism: release.mechanism, run: m.runID, round: m.completedRounds + 1,
                                             modelSHA256: nil, time: now, sign: ledgerSigner)
            try store.appendLedger([entry])
            ledger = next
            leaveOut(silo.id, "the privacy budget \(release.budget) cannot afford round \(m.completedRounds + 1): \(entry.entry.reason ?? "spent")")
        } catch {
            leaveOut(silo.id, "cannot record the refusal of \(release.budget): \(error)")
        }
    }

    func leaveOut(_ silo: String, _ reason: String) {
        guard let m = machine else { return }
        machine!.leaveOut(silo, reason: reason)
        // Shown by `run status` while the run waits (or until it ends budget-exhausted).
        let all = machine!.unaffordable.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        try? store.setStatus(run: m.runID, "running", message: "left out for their privacy budgets: \(all)")
        logger.notice("silo left out of the run for its privacy budget", metadata: ["run": "\(m.runID)", "silo": "\(silo)", "reason": "\(reason)"])
    }

    /// No live silo can afford another round: the run ends `budget-exhausted`, naming each silo's reason.
    func endForBudget() {
        guard let m = machine else { return }
        let reasons = m.unaffordable.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        let message = "after \(m.completedRounds) of \(m.spec.rounds) rounds no silo's privacy budget affords another: \(reasons)"
        do { try store.setStatus(run: m.runID, "budget-exhausted", message: message) } catch {
            logger.error("cannot record the end of the run", metadata: ["run": "\(m.runID)", "error": "\(error)"])
            return
        }
        logger.notice("run ended: budget exhausted", metadata: ["run": "\(m.runID)", "rounds": "\(m.completedRounds)", "reason": "\(message)"])
        machine = nil
        evaluation = nil
        resume()
    }

    /// The round's charges, drafted on a copy of the ledger: returned with the copy to adopt once the commit
    /// (which stores them) succeeds. Throws `LedgerRefusal` when a release no longer fits its budget.
    func draftCharges(_ releases: [PrivacyRelease], runID: String, round: Int, modelSHA256: String) throws -> (PrivacyLedger, [SignedEntry]) {
        guard !releases.isEmpty else { return (ledger, []) }
        try openLedger()
        var next = ledger
        var charged = [SignedEntry](), refused = [SignedEntry](), reasons = [String: String]()
        let now = WallClock.now()
        for release in releases {
            guard next.filters[release.budget] != nil else {
                if config.requireBudgets { reasons[release.silo] = "no privacy budget is registered for \(release.budget)" }
                continue
            }
            let entry: SignedEntry, fits: Bool
            do {
                (entry, fits) = try next.charge(release.budget, mechanism: release.mechanism, run: runID, round: round,
                                                modelSHA256: modelSHA256, time: now, sign: ledgerSigner)
            } catch {
                // A release the ledger cannot price is never released (and nothing can be recorded of it).
                reasons[release.silo] = "the release of \(release.budget) in round \(round) cannot be priced: \(error.message)"
                continue
            }
            if fits { charged.append(entry) } else {
                refused.append(entry)
                reasons[release.silo] = "the privacy budget \(release.budget) cannot afford round \(round): \(entry.entry.reason ?? "spent")"
            }
        }
        guard reasons.isEmpty else {
            // Only the refusals are recorded: nothing of this round is released.
            var refusals = ledger
            var entries = [SignedEntry]()
            for r in refused {
                // Re-drafted on the ledger without this round's charges, so the refusals chain on it.
                let (entry, charged) = try refusals.charge(r.entry.budget, mechanism: r.entry.mechanism!, run: runID, round: round,
                                                           modelSHA256: nil, time: now, sign: ledgerSigner)
                guard !charged else { throw FederationError(.failedPrecondition, "refusal of \(r.entry.budget) became a charge when re-drafted") }
                entries.append(entry)
            }
            throw LedgerRefusal(entries: entries, reasons: reasons)
        }
        return (next, charged)
    }

    /// A round refused at commit: its refusals recorded, its silos left out, the round dropped unreleased.
    func refuseRound(_ refusal: LedgerRefusal, round: Int) {
        do {
            var next = ledger
            for entry in refusal.entries { try next.append(entry) }
            try store.appendLedger(refusal.entries)
            ledger = next
        } catch {
            logger.error("cannot record the ledger's refusals", metadata: ["round": "\(round)", "error": "\(error)"])
        }
        for (silo, reason) in refusal.reasons.sorted(by: { $0.key < $1.key }) { leaveOut(silo, reason) }
        _ = machine?.abandonRound()
        let reason = refusal.reasons.values.sorted().joined(separator: "; ")
        attemptEnded("abandoned", round: round, reason: reason)
        mailbox.resolveAll(.failed("round \(round) is not released: \(reason)"))
    }
}
