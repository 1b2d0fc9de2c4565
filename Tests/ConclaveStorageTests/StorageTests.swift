import ConclaveFederation
import ConclaveLearning
import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

@Suite struct StorageTests {
    let model = try! ModelSpec(architecture: .logreg, inputFeatures: 2, hidden: [], classCount: 2)

    func closedRound(_ number: Int, weights: [Float]) throws -> RoundStateMachine.ClosedRound {
        let spec = try RunSpec(name: "s", model: model, rounds: 5, training: TrainingConfig(), minSilos: 1)
        var m = RoundStateMachine(runID: "r1", spec: spec, globalWeights: [Float](repeating: 0, count: 6),
                                  completedRounds: number - 1)
        let silo = SiloInfo(id: "a", examples: 4, features: 2, classes: 2)
        _ = try m.requestWork(from: silo, now: 0)
        guard case .roundClosed(let c) = try m.submit(from: silo, runID: "r1", round: number, update: weights,
                                                       trainLoss: 0.5, trainSeconds: 1, now: 1) else {
            throw StorageError("did not close")
        }
        return c
    }

    @Test func roundsCommitWithTheirCheckpoints() throws {
        let dir = Fixtures.temporaryDirectory()
        let store = try CoordinatorStore(path: dir + "/c.sqlite")
        let checkpoints = try CheckpointStore(directory: dir + "/ckpt")
        let spec = try RunSpec(name: "s", model: model, rounds: 2, training: TrainingConfig(), minSilos: 1)
        try store.createRun(id: "r1", spec: spec, specTOML: "rounds = 2", now: 1)
        #expect(try store.run(id: "r1")?.status == "pending")
        let closed = try closedRound(1, weights: [1, 2, 3, 4, 5, 6])
        let sha = try checkpoints.save(model: model, weights: closed.newWeights, serverOptimizer: closed.serverOptimizer,
                                       runID: "r1", round: 1)
        try store.commitRound(run: "r1", closed: closed, checkpointSHA256: sha, checkpointPath: checkpoints.path(for: sha),
                              testAccuracy: 0.5, testLoss: 0.7, roundsPlanned: 2, now: 2)
        let record = try #require(try store.run(id: "r1"))
        #expect(record.completedRounds == 1)
        #expect(record.status == "running")
        #expect(record.spec == spec)
        let rounds = try store.rounds(run: "r1")
        #expect(rounds.count == 1)
        #expect(rounds[0].silos == ["a"])
        #expect(rounds[0].testAccuracy == 0.5)
        #expect(try store.metrics(run: "r1").contains { $0.name == "test_accuracy" && $0.value == 0.5 })
        let loaded = try checkpoints.load(sha256: sha, model: model, server: spec.server)
        #expect(loaded.weights == [1, 2, 3, 4, 5, 6])
    }

    @Test func aFailedCommitLeavesNothingBehind() throws {
        let dir = Fixtures.temporaryDirectory()
        let store = try CoordinatorStore(path: dir + "/c.sqlite")
        let spec = try RunSpec(name: "s", model: model, rounds: 2, training: TrainingConfig(), minSilos: 1)
        try store.createRun(id: "r1", spec: spec, specTOML: "", now: 1)
        let closed = try closedRound(1, weights: [1, 1, 1, 1, 1, 1])
        try store.commitRound(run: "r1", closed: closed, checkpointSHA256: "aa", checkpointPath: "p", testAccuracy: nil,
                              testLoss: nil, roundsPlanned: 2, now: 2)
        // Committing round 1 again fails part-way (primary key); no row of the second attempt may remain.
        #expect(throws: StorageError.self) {
            try store.commitRound(run: "r1", closed: closed, checkpointSHA256: "bb", checkpointPath: "q", testAccuracy: 0.9,
                                  testLoss: nil, roundsPlanned: 2, now: 3)
        }
        #expect(try store.rounds(run: "r1").map(\.checkpointSHA256) == ["aa"])
        #expect(try store.metrics(run: "r1").allSatisfy { $0.name != "test_accuracy" })
        #expect(try store.run(id: "r1")?.completedRounds == 1)
        // A round for an unknown run is refused by the foreign key, leaving nothing either.
        #expect(throws: StorageError.self) {
            try store.commitRound(run: "ghost", closed: closed, checkpointSHA256: "cc", checkpointPath: "r", testAccuracy: nil,
                                  testLoss: nil, roundsPlanned: 2, now: 3)
        }
        #expect(try store.rounds(run: "ghost").isEmpty)
    }

    @Test func corruptCheckpointIsDetected() throws {
        let dir = Fixtures.temporaryDirectory()
        let checkpoints = try CheckpointStore(directory: dir)
        let opt = ServerOptimizer(config: ServerOptimizerConfig(kind: .fedadam), parameterCount: 6)
        let sha = try checkpoints.save(model: model, weights: [1, 2, 3, 4, 5, 6], serverOptimizer: opt, runID: "r", round: 1)
        let restored = try checkpoints.load(sha256: sha, model: model, server: opt.config)
        #expect(restored.serverOptimizer == opt)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: checkpoints.path(for: sha)))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: checkpoints.path(for: sha)))
        let error = #expect(throws: StorageError.self) { try checkpoints.load(sha256: sha, model: model, server: opt.config) }
        #expect(error?.message.contains("corrupt") == true)
    }
}
