import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveTesting
import Testing

/// Record mode: every silo plans its own DP-SGD noise for its own record count, trains privately, and reports
/// its cumulative ε with each update; the coordinator counts only reported updates.
@Suite struct RecordPrivacyTests {
    static let model = try! ModelSpec(architecture: .logreg, inputFeatures: 8, hidden: [], classCount: 3)
    static let training = TrainingConfig(localEpochs: 1, batchSize: 100, learningRate: 0.5, momentum: 0.5)

    @Test func eachSiloCalibratesItsOwnNoiseToTheBudget() throws {
        let privacy = try PrivacyConfig(mode: .record, epsilon: 2, delta: 1e-5)
        let small = try RecordPrivacyPlan(privacy: privacy, examples: 1000, training: Self.training, plannedRounds: 5)
        let large = try RecordPrivacyPlan(privacy: privacy, examples: 4000, training: Self.training, plannedRounds: 5)
        #expect(small.samplingRate == 0.1 && large.samplingRate == 0.025)
        #expect(small.stepsPerRound == 10 && large.stepsPerRound == 40)
        for plan in [small, large] {
            let spent = plan.spent(afterRounds: 5)
            #expect(spent.epsilon <= 2 && spent.epsilon > 1.99, "ε \(spent.epsilon) for σ \(plan.noiseMultiplier)")
            #expect(spent.steps == 5 * plan.stepsPerRound)
            #expect(plan.spent(afterRounds: 2).epsilon < spent.epsilon)
        }
        // Fewer records means a larger sampling rate, which needs more noise for the same ε.
        #expect(small.noiseMultiplier > large.noiseMultiplier)
        // A fixed multiplier is taken as given.
        let fixed = try RecordPrivacyPlan(privacy: PrivacyConfig(mode: .record, noiseMultiplier: 1.3), examples: 1000,
                                          training: Self.training, plannedRounds: 5)
        #expect(fixed.noiseMultiplier == 1.3)
        #expect(fixed.spent(afterRounds: 5).epsilon
                == (try Accountant.epsilon(noiseMultiplier: 1.3, samplingRate: 0.1, steps: 50, delta: 1e-5)))
    }

    @Test func aRecordModeFederationReportsEverySilosSpendAndLearns() throws {
        let train = Fixtures.blobs(count: 3000, features: 8, classes: 3, seed: 1, spread: 1.2)
        let test = Fixtures.blobs(count: 600, features: 8, classes: 3, seed: 2, spread: 1.2)
        let sizes = [600, 900, 1500]
        var offset = 0
        let silos = sizes.enumerated().map { i, n in
            defer { offset += n }
            return Simulation.Silo(id: "silo-\(i)", data: train.subset(Array(offset..<(offset + n))))
        }
        let spec = try RunSpec(name: "record", model: Self.model, rounds: 3, training: Self.training, minSilos: 3,
                               secureAggregation: SecureAggregationConfig(),
                               privacy: PrivacyConfig(mode: .record, epsilon: 2))
        var sim = Simulation(spec: spec, silos: silos)
        let reports = try sim.run(evaluateOn: test)
        #expect(reports.count == 3)
        for (r, report) in reports.enumerated() {
            #expect(Set(report.siloPrivacy.keys) == ["silo-0", "silo-1", "silo-2"])
            for (silo, spent) in report.siloPrivacy {
                let plan = try #require(sim.recordPlans[silo])
                #expect(spent == plan.spent(afterRounds: r + 1))
            }
            #expect(report.privacy?.epsilon == report.siloPrivacy.values.map(\.epsilon).max())
        }
        // The budget holds at the end for every silo, however many records it has.
        for spent in reports.last!.siloPrivacy.values { #expect(spent.epsilon <= 2 && spent.epsilon > 1.99) }
        #expect(sim.roundsTrained == ["silo-0": 3, "silo-1": 3, "silo-2": 3])
        #expect(reports.last!.evaluation!.accuracy > 0.8, "accuracy \(reports.last!.evaluation!.accuracy)")
    }

    @Test func theCoordinatorCountsOnlyReportedUpdatesInRecordMode() throws {
        // 1,000 records at batch 100: the run's plan is q = 0.1, σ = 1, 10 steps a round.
        let silo = SiloInfo(id: "a", examples: 1000, features: 8, classes: 3)
        let update = [Float](repeating: 0, count: Self.model.parameterCount)
        let record = try RunSpec(name: "r", model: Self.model, rounds: 1, training: Self.training, minSilos: 1,
                                 privacy: PrivacyConfig(mode: .record, noiseMultiplier: 1))
        var machine = RoundStateMachine(runID: "run", spec: record, globalWeights: Self.model.initialParameters(seed: 1))
        guard case .train = try machine.requestWork(from: silo, now: 0) else { Issue.record("no task"); return }
        #expect(throws: FederationError.self) {
            try machine.submit(from: silo, runID: "run", round: 1, update: update, trainLoss: 1, trainSeconds: 1, now: 1)
        }
        let bad = SiloPrivacy(epsilon: .nan, delta: 1e-5, noiseMultiplier: 1, samplingRate: 0.1, steps: 10)
        #expect(throws: FederationError.self) {
            try machine.submit(from: silo, runID: "run", round: 1, update: update, trainLoss: 1, trainSeconds: 1, privacy: bad, now: 1)
        }
        // A report that claims more noise (or a lower rate) than the run's plan gives its records is refused:
        // the ledger charges what the plan releases, not what a silo says.
        for (sigma, q) in [(2.0, 0.1), (1.0, 0.05)] {
            let lying = SiloPrivacy(epsilon: 0.7, delta: 1e-5, noiseMultiplier: sigma, samplingRate: q, steps: 10)
            #expect(throws: FederationError.self) {
                try machine.submit(from: silo, runID: "run", round: 1, update: update, trainLoss: 1, trainSeconds: 1, privacy: lying, now: 1)
            }
        }
        let good = SiloPrivacy(epsilon: 0.7, delta: 1e-5, noiseMultiplier: 1, samplingRate: 0.1, steps: 10)
        let event = try machine.submit(from: silo, runID: "run", round: 1, update: update, trainLoss: 1, trainSeconds: 1,
                                       privacy: good, now: 1)
        guard case .roundClosed(let closed) = event else { Issue.record("round did not close"); return }
        #expect(closed.contributions.first?.privacy == good)
        #expect(closed.privacy?.epsilon == 0.7)
        #expect(closed.releases.map(\.mechanism) == [.subsampledGaussian(samplingRate: 0.1, noiseMultiplier: 1, steps: 10)])

        // A run without record privacy refuses a report (the silo is confused about what it joined).
        let plain = try RunSpec(name: "p", model: Self.model, rounds: 1, training: Self.training, minSilos: 1)
        var other = RoundStateMachine(runID: "run", spec: plain, globalWeights: Self.model.initialParameters(seed: 1))
        _ = try other.requestWork(from: silo, now: 0)
        #expect(throws: FederationError.self) {
            try other.submit(from: silo, runID: "run", round: 1, update: update, trainLoss: 1, trainSeconds: 1, privacy: good, now: 1)
        }
    }
}
