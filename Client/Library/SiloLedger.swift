import ConclaveConfig
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
public import ConclavePrivacy
import ConclaveSiloLedger
import Foundation

/// The silo's own privacy ledger and filters. Every release of the silo's data is charged here — signed with
/// the silo's identity key and written durably — before it leaves, and refused when the silo's own copy of
/// the budget (the registration it adopted from the ledger, and its own `max_epsilon`) cannot afford it; so
/// the silo's refusal does not depend on the coordinator's honesty. A crash between charge and send costs
/// nothing twice: the unsent charge is reused; once a release began to leave, a retried round is a new one.
actor SiloLedger {
    let store: SiloLedgerStore
    let maxEpsilon: Double?
    let siloID: String
    let identity: Ed25519KeyPair

    init(path: String, maxEpsilon: Double?, siloID: String, identity: Ed25519KeyPair) throws(FederationError) {
        do { store = try SiloLedgerStore(path: path) } catch { throw FederationError(.failedPrecondition, error.message) }
        self.maxEpsilon = maxEpsilon
        self.siloID = siloID
        self.identity = identity
    }

    struct RecordPlanRecord: Codable, Equatable {
        var privacy: PrivacyConfig
        var examples: Int
        var training: TrainingConfig
        var plan: RecordPrivacyPlan
    }

    /// Record mode: this silo's plan for a run — the stored one, or a new one (calibrated once, then kept). A
    /// run may not change its privacy or training terms once the silo has trained in it.
    func plan(runID: String, privacy: PrivacyConfig, examples: Int, training: TrainingConfig,
              plannedRounds: Int) throws(FederationError) -> RecordPrivacyPlan {
        if let data = try storage({ () throws(SiloLedgerError) in try store.plan(run: runID) }) {
            guard let stored = try? JSONDecoder().decode(RecordPlanRecord.self, from: data) else {
                throw FederationError(.failedPrecondition, "the stored plan of run '\(runID)' in \(store.path) is unreadable")
            }
            guard stored.privacy == privacy, stored.examples == examples, stored.training == training,
                  stored.plan.plannedRounds == plannedRounds else {
                throw FederationError(.failedPrecondition,
                    "run '\(runID)' changed its privacy or training parameters (or this silo's data changed) after this silo trained in it; refusing to train")
            }
            return stored.plan
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
        let record = RecordPlanRecord(privacy: privacy, examples: examples, training: training, plan: plan)
        try storage { () throws(SiloLedgerError) in try store.savePlan(run: runID, (try? JSONEncoder().encode(record)) ?? Data()) }
        return plan
    }

    enum Outcome: Sendable {
        case charged(SiloCharge)
        case refused(String)
    }

    /// Charges one release before it leaves, or says why this silo refuses it. `roundLimit`: record mode never
    /// trains in more rounds of a run than its plan was calibrated for.
    func charge(run: String, round: Int, budget: BudgetKey, mechanism: Mechanism, delta: Double,
                roundLimit: Int? = nil) throws(FederationError) -> Outcome {
        do { try mechanism.validate() } catch {
            return .refused("the release cannot be priced: \(error.message)")
        }
        let stored = try storage { () throws(SiloLedgerError) in try store.charges() }
        let same = stored.filter { $0.charge.run == run && $0.charge.round == round && $0.charge.budget == budget }
        if let last = same.max(by: { $0.charge.release < $1.charge.release }) {
            let sent = try storage { () throws(SiloLedgerError) in try store.isSending(run: run, round: round, release: last.charge.release) }
            if !sent { return .charged(last.charge) }  // charged, never sent: the same release, not a new one
        }
        if let limit = roundLimit {
            let rounds = Set(stored.filter { $0.charge.run == run && $0.charge.round != round }.map(\.charge.round))
            if rounds.count >= limit {
                return .refused("this silo has trained in all \(limit) rounds its privacy plan for run '\(run)' was calibrated for")
            }
        }
        let adopted = try storage { () throws(SiloLedgerError) in try store.adopted() }
        let filters: SiloFilters
        do { filters = try SiloFilters(adopted: adopted, charges: stored.map(\.charge), maxEpsilon: maxEpsilon) } catch {
            throw FederationError(.failedPrecondition, "this silo's privacy ledger \(store.path) does not replay: \(error.message)")
        }
        let charge = SiloCharge(run: run, round: round, release: (same.map(\.charge.release).max() ?? -1) + 1, budget: budget,
                                mechanism: mechanism, delta: delta, time: Date().timeIntervalSince1970)
        if let why = filters.refusal(charge) { return .refused(why) }
        try storage { () throws(SiloLedgerError) in try store.append(charge, signature: identity.sign(charge.signedBytes)) }
        return .charged(charge)
    }

    /// How many rounds of a run this silo has charged (record mode reports its cumulative spend from it).
    func roundsCharged(run: String) throws(FederationError) -> Int {
        Set(try storage { () throws(SiloLedgerError) in try store.charges() }.filter { $0.charge.run == run }.map(\.charge.round)).count
    }

    /// The release is about to leave: a later task for the same round is a new release.
    func markSending(_ charge: SiloCharge) throws(FederationError) {
        try storage { () throws(SiloLedgerError) in try store.markSending(run: charge.run, round: charge.round, release: charge.release) }
    }

    func storage<T>(_ body: () throws(SiloLedgerError) -> T) throws(FederationError) -> T {
        do { return try body() } catch {
            throw FederationError(.failedPrecondition, "\(error.message); the update is not sent")
        }
    }
}

/// What this silo's own ledger says of each of its budgets (`conclave-client budget show`).
public struct SiloBudgetView: Sendable {
    public let budget: BudgetKey
    public let epsilonCap: Double?
    public let deltaCap: Double?
    public let localCap: Double?
    public let epsilonSpent: Double
    public let releases: Int
    public let runs: Int

    /// Reads a silo's ledger file (the agent need not run).
    public static func read(path: String, maxEpsilon: Double?) throws -> [SiloBudgetView] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SiloLedgerError("no privacy ledger at \(path) yet: the agent makes it at its first release")
        }
        let store = try SiloLedgerStore(path: path)
        let charges = try store.charges().map(\.charge)
        let adopted = try store.adopted()
        let filters = try SiloFilters(adopted: adopted, charges: charges, maxEpsilon: maxEpsilon)
        var keys = [BudgetKey]()
        for k in adopted.filter({ $0.kind == .registration }).map(\.budget) + charges.map(\.budget) where !keys.contains(k) { keys.append(k) }
        return keys.map { k in
            let mine = charges.filter { $0.budget == k }
            return SiloBudgetView(budget: k, epsilonCap: filters.registered[k]?.epsilonCap, deltaCap: filters.registered[k]?.deltaCap,
                                  localCap: maxEpsilon, epsilonSpent: filters.epsilonSpent(k), releases: mine.count,
                                  runs: Set(mine.map(\.run)).count)
        }
    }
}
