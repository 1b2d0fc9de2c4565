@testable import ConclaveAgent
import ConclaveFederation
import ConclaveLearning
import ConclaveTesting
import Foundation
import Testing

/// The silo's own ledger of record-mode spending: charged on disk before an update leaves, survives a restart,
/// and refuses what would overspend.
@Suite struct PrivacyLedgerTests {
    static let training = TrainingConfig(localEpochs: 1, batchSize: 50, learningRate: 0.1)

    @Test func chargesSurviveARestartAndStopAtThePlannedRounds() async throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/silo.privacy-ledger.json"
        let privacy = try PrivacyConfig(mode: .record, epsilon: 1.5)
        let ledger = try RecordPrivacyLedger(path: path, maxEpsilon: nil)
        let plan = try await ledger.plan(runID: "run-1", privacy: privacy, examples: 500, training: Self.training, plannedRounds: 2)
        let first = try await ledger.charge(runID: "run-1")
        #expect(first == plan.spent(afterRounds: 1))
        #expect(FileManager.default.fileExists(atPath: path))

        // A restarted agent reads the same plan and carries on from the round it had reached.
        let reopened = try RecordPrivacyLedger(path: path, maxEpsilon: nil)
        #expect(try await reopened.plan(runID: "run-1", privacy: privacy, examples: 500, training: Self.training,
                                        plannedRounds: 2) == plan)
        let second = try await reopened.charge(runID: "run-1")
        #expect(second == plan.spent(afterRounds: 2))
        #expect(second.epsilon <= 1.5 && second.epsilon > first.epsilon)
        await #expect(throws: FederationError.self) { try await reopened.charge(runID: "run-1") }

        // The run may not change its terms once the silo has trained in it.
        let looser = try PrivacyConfig(mode: .record, epsilon: 5)
        await #expect(throws: FederationError.self) {
            try await reopened.plan(runID: "run-1", privacy: looser, examples: 500, training: Self.training, plannedRounds: 2)
        }
        await #expect(throws: FederationError.self) {
            try await reopened.plan(runID: "run-1", privacy: privacy, examples: 500, training: Self.training, plannedRounds: 9)
        }
    }

    @Test func aSilosCeilingRefusesAnExpensiveRun() async throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/ledger.json"
        let ledger = try RecordPrivacyLedger(path: path, maxEpsilon: 1)
        await #expect(throws: FederationError.self) {
            try await ledger.plan(runID: "r", privacy: PrivacyConfig(mode: .record, epsilon: 3), examples: 500,
                                  training: Self.training, plannedRounds: 2)
        }
        _ = try await ledger.plan(runID: "cheap", privacy: PrivacyConfig(mode: .record, epsilon: 0.9), examples: 500,
                                  training: Self.training, plannedRounds: 2)
    }

    @Test func anUnreadableLedgerStopsTheAgentWithItsPath() throws {
        let path = Fixtures.temporaryDirectory("conclave-ledger") + "/ledger.json"
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try RecordPrivacyLedger(path: path, maxEpsilon: nil)
            Issue.record("a corrupt ledger was accepted")
        } catch {
            #expect(error.message.contains(path) && error.message.contains("do not delete it"))
        }
    }
}
