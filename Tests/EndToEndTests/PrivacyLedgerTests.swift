@testable import ConclaveAgent
import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveSiloLedger
import ConclaveTesting
import Foundation
import Testing

/// The silo's own ledger: record plans kept across restarts, every release charged durably before it leaves,
/// a charge that never left reused (no double charge after a crash), the silo's own filters refusing what
/// would overspend, and an unreadable file stopping the agent with its path.
@Suite struct PrivacyLedgerTests {
    static let training = TrainingConfig(localEpochs: 1, batchSize: 50, learningRate: 0.1)
    let budget = BudgetKey(silo: "s", dataset: "d", unit: "record")

    func ledger(_ path: String, maxEpsilon: Double? = nil) throws(FederationError) -> SiloLedger {
        try SiloLedger(path: path, maxEpsilon: maxEpsilon, siloID: "s", identity: Ed25519KeyPair())
    }

    @Test func plansAndChargesSurviveARestartAndStopAtThePlannedRounds() async throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/silo.privacy-ledger.sqlite"
        let privacy = try PrivacyConfig(mode: .record, epsilon: 1.5)
        let first = try ledger(path)
        let plan = try await first.plan(runID: "run-1", privacy: privacy, examples: 500, training: Self.training, plannedRounds: 2)
        let mechanism = Mechanism.subsampledGaussian(samplingRate: plan.samplingRate, noiseMultiplier: plan.noiseMultiplier, steps: plan.stepsPerRound)
        guard case .charged(let c1) = try await first.charge(run: "run-1", round: 1, budget: budget, mechanism: mechanism, delta: 1e-5, roundLimit: 2) else {
            Issue.record("the first round was refused"); return
        }
        try await first.markSending(c1)

        // A restarted agent reads the same plan; a charge made but never sent (a crash in between) is reused.
        let reopened = try ledger(path)
        #expect(try await reopened.plan(runID: "run-1", privacy: privacy, examples: 500, training: Self.training, plannedRounds: 2) == plan)
        guard case .charged(let c2) = try await reopened.charge(run: "run-1", round: 2, budget: budget, mechanism: mechanism, delta: 1e-5, roundLimit: 2),
              case .charged(let again) = try await reopened.charge(run: "run-1", round: 2, budget: budget, mechanism: mechanism, delta: 1e-5, roundLimit: 2) else {
            Issue.record("round 2 was refused"); return
        }
        #expect(again == c2 && c2.release == 0)
        try await reopened.markSending(c2)
        // Once it began to leave, the same round asked again is a new release (charged again).
        guard case .charged(let c3) = try await reopened.charge(run: "run-1", round: 2, budget: budget, mechanism: mechanism, delta: 1e-5, roundLimit: 2) else {
            Issue.record("a retried round was refused"); return
        }
        #expect(c3.release == 1)
        #expect(try await reopened.roundsCharged(run: "run-1") == 2)
        // Never beyond the planned rounds.
        guard case .refused(let why) = try await reopened.charge(run: "run-1", round: 3, budget: budget, mechanism: mechanism, delta: 1e-5, roundLimit: 2) else {
            Issue.record("a third round was charged"); return
        }
        #expect(why.contains("all 2 rounds"))
        #expect(try SiloLedgerStore(path: path).charges().count == 3)

        // The run may not change its terms once the silo has trained in it.
        await #expect(throws: FederationError.self) {
            try await reopened.plan(runID: "run-1", privacy: PrivacyConfig(mode: .record, epsilon: 5), examples: 500,
                                    training: Self.training, plannedRounds: 2)
        }
    }

    @Test func theSilosOwnCapRefusesOnItsOwn() async throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/ledger.sqlite"
        let capped = try ledger(path, maxEpsilon: 1)
        await #expect(throws: FederationError.self) {
            try await capped.plan(runID: "r", privacy: PrivacyConfig(mode: .record, epsilon: 3), examples: 500,
                                  training: Self.training, plannedRounds: 2)
        }
        // Releases priced one by one: the cap admits some, then refuses, whatever any coordinator says.
        let mechanism = Mechanism.subsampledGaussian(samplingRate: 1, noiseMultiplier: 10, steps: 1)
        var charged = 0
        for round in 1...50 {
            guard case .charged(let c) = try await capped.charge(run: "r", round: round, budget: budget, mechanism: mechanism, delta: 1e-5) else { break }
            try await capped.markSending(c)
            charged += 1
        }
        #expect(charged >= 1 && charged < 50)
        // What was admitted holds the cap: an independent RDP conversion of the sum.
        let rdp = RDP.defaultOrders.map { Double(charged) * mechanism.rdp(order: $0) }
        #expect(RDP.epsilon(rdp: rdp, orders: RDP.defaultOrders, delta: 1e-5).epsilon <= 1 + 1e-9)
    }

    @Test func anUnreadableLedgerStopsTheAgentWithItsPath() throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/ledger.sqlite"
        try Data("not a database, not at all, definitely not".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ledger(path)
            Issue.record("a corrupt ledger was accepted")
        } catch {
            #expect(error.message.contains(path) && error.message.contains("do not delete it"))
        }
    }

    /// Several processes may open a new ledger at once (two agents misconfigured with one id, a CLI beside the
    /// agent): the tables are created once, and every opener gets a working ledger.
    @Test func concurrentOpenersOfANewLedgerAllSucceed() async throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/shared.sqlite"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try SiloLedgerStore(path: path) } }
            try await group.waitForAll()
        }
        #expect(try SiloLedgerStore(path: path).charges().isEmpty)
    }
}
