import ConclaveFederation
import ConclaveLearning
import ConclaveTesting
import Testing

@Suite struct SimulationTests {
    /// Hundreds of silos in one process, non-IID, through the real state machine: accuracy must climb.
    @Test func threeHundredSilosLearnInProcess() throws {
        let train = Fixtures.blobs(count: 6000, features: 8, classes: 3, seed: 1, spread: 1.2)
        let test = Fixtures.blobs(count: 600, features: 8, classes: 3, seed: 2, spread: 1.2)
        let parts = try Partitioner.partition(labels: train.labels, classCount: 3, silos: 300,
                                              scheme: .dirichlet(alpha: 1), seed: 4, minimumPerSilo: 2)
        let silos = parts.enumerated().map { Simulation.Silo(id: "silo-\($0.offset)", data: train.subset($0.element)) }
        let spec = try RunSpec(name: "sim", model: ModelSpec(architecture: .logreg, inputFeatures: 8, hidden: [], classCount: 3),
                               rounds: 4, training: TrainingConfig(localEpochs: 1, batchSize: 8, learningRate: 0.05,
                                                                   momentum: 0), minSilos: 50, silosPerRound: 100)
        var sim = Simulation(spec: spec, silos: silos, dropoutRate: 0.1)
        let initial = try Evaluator.evaluate(spec: spec.model, parameters: sim.machine.globalWeights, data: test)
        let reports = try sim.run(evaluateOn: test)
        #expect(reports.count == 4)
        #expect(reports.allSatisfy { $0.contributors + $0.dropped == 100 })
        #expect(reports.contains { $0.dropped > 0 })
        #expect(reports.last!.evaluation!.accuracy > max(0.9, initial.accuracy + 0.2))
    }
}
