import ConclaveConfig
import ConclaveFederation
import ConclaveLearning
import ConclaveAdminClient
import ConclaveAgent
import ConclaveCoordinator
import ConclaveSupport
import ConclaveWireConversions
import ConclaveStorage
import ConclaveTesting
import ConclaveWire
import GRPCCore
import SwiftProtobuf
import Foundation
import Logging
import Testing

/// The coordinator's run driver in-process, on a real SQLite file: bad input is refused with a message and
/// leaves the database as it was; a restarted driver resumes from the last committed round.
@Suite struct DriverTests {
    static let spec = """
        name = "t"
        rounds = 3
        min_silos = 1
        [model]
        architecture = "logreg"
        input_features = 8
        num_classes = 3
        [training]
        learning_rate = 0.05
        [secure_aggregation]
        enabled = false  # this test exercises the plain update path
        """

    func driver(_ dir: String) throws -> RunDriver {
        try RunDriver(config: InProcessCoordinator.config(directory: dir), logger: Logger(label: "test"))
    }

    let silo = SiloInfo(id: "a", examples: 60, features: 8, classes: 3)

    @Test func badRunSpecsAreRefusedWithoutWritingAnything() async throws {
        let dir = Fixtures.temporaryDirectory()
        let d = try driver(dir)
        let unknownModel = Self.spec.replacingOccurrences(of: "logreg", with: "transformer")
        let e1 = await #expect(throws: FederationError.self) { try await d.startRun(specTOML: unknownModel, source: "run.toml") }
        #expect(e1?.message == "run.toml:5: key 'model.architecture' must be one of 'mlp', 'logreg', got 'transformer'")
        let missingEval = Self.spec + "\n[evaluation]\nformat = \"idx\"\nimages = \"/nope/i.gz\"\nlabels = \"/nope/l.gz\"\n"
        let e2 = await #expect(throws: FederationError.self) { try await d.startRun(specTOML: missingEval, source: "run.toml") }
        #expect(e2?.message.contains("/nope/i.gz: no such file") == true)
        #expect(try d.store.runs().isEmpty)
    }

    @Test func roundsPersistAndARestartResumes() async throws {
        let dir = Fixtures.temporaryDirectory()
        let data = Fixtures.blobs(count: 60)
        var d = try driver(dir)
        let run = try await d.startRun(specTOML: Self.spec, source: "run.toml")
        #expect(run.status == "running")

        // A silo with the wrong shape is refused and the run goes on.
        let wide = SiloInfo(id: "b", examples: 10, features: 9, classes: 3)
        let refused = await #expect(throws: FederationError.self) { try await d.requestWork(from: wide) }
        #expect(refused?.message.contains("has 9 features") == true)

        for round in 1...2 {
            guard case .train(let task) = try await d.requestWork(from: silo) else {
                Issue.record("silo should get round \(round)"); return
            }
            #expect(task.round == round)
            let result = try LocalUpdate.compute(model: task.spec.model, training: task.spec.training, round: round,
                                                 globalWeights: task.weights, siloID: "a", data: data)
            try await d.submit(from: silo, runID: run.id, round: round, update: result.update, trainLoss: result.trainLoss,
                               trainSeconds: result.seconds)
            // The round is closed now: a late or replayed update is refused.
            let late = await #expect(throws: FederationError.self) {
                try await d.submit(from: silo, runID: run.id, round: round, update: result.update, trainLoss: 0, trainSeconds: 0)
            }
            #expect(late?.code == .failedPrecondition)
        }
        let rounds = try d.store.rounds(run: run.id)
        #expect(rounds.map(\.round) == [1, 2])
        let lastWeights = try d.checkpoints.load(sha256: rounds[1].checkpointSHA256, model: run.spec.model,
                                                 server: run.spec.server).weights

        // Round 3 is handed out, then the coordinator stops before it closes.
        guard case .train = try await d.requestWork(from: silo) else { Issue.record("round 3 should open"); return }
        await d.shutdown()
        // Every attempt is in round_attempts: the two that committed, and the one the shutdown abandoned.
        #expect(try d.store.attempts(run: run.id).map(\.outcome) == ["committed", "committed", "abandoned"])
        #expect(try d.store.attempts(run: run.id).last?.reason == "coordinator shut down")
        // The Admin API lists the abandoned attempt beside the committed rounds.
        let context = ServerContext(descriptor: Conclave_V1_Admin.Method.GetRun.descriptor, remotePeer: "test", localPeer: "test",
                                    cancellation: .init())
        let info = try await AdminService(driver: d).getRun(request: .with { $0.runID = run.id }, context: context)
        #expect(info.rounds.map(\.status) == ["completed", "completed"])
        #expect(info.abandoned.map(\.round) == [3] && info.abandoned.map(\.status) == ["abandoned"])
        #expect(info.abandoned.first?.reason == "coordinator shut down")

        d = try driver(dir)
        await d.resume()
        guard case .train(let task) = try await d.requestWork(from: silo) else { Issue.record("round 3 should reopen"); return }
        #expect(task.round == 3)
        #expect(task.weights == lastWeights)
        try await d.submit(from: silo, runID: run.id, round: 3, update: [Float](repeating: 0, count: task.weights.count),
                           trainLoss: 0, trainSeconds: 0)
        #expect(try d.store.run(id: run.id)?.status == "completed")
        let exported = try await d.exportModel(runID: run.id, round: nil)
        #expect(exported.round == 3)
        #expect(exported.weights == lastWeights)
    }
}
