import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import ConclaveTesting
import Testing

/// DP-SGD on one silo's records: it still learns under noise, and it is the noise and clipping that differ from
/// plain training, not the learning.
@Suite struct PrivateTrainerTests {
    @Test func dpSGDLearnsSeparableDataUnderNoise() throws {
        let train = Fixtures.blobs(count: 3000, features: 8, classes: 3, seed: 1, spread: 1.2)
        let test = Fixtures.blobs(count: 600, features: 8, classes: 3, seed: 2, spread: 1.2)
        let spec = try ModelSpec(architecture: .logreg, inputFeatures: 8, hidden: [], classCount: 3)
        let start = spec.initialParameters(seed: 1)
        let before = try Evaluator.evaluate(spec: spec, parameters: start, data: test).accuracy
        let config = TrainingConfig(localEpochs: 3, batchSize: 100, learningRate: 0.5, momentum: 0.5)
        let result = try PrivateTrainer.train(spec: spec, parameters: start, data: train, config: config, clipNorm: 1,
                                              noiseMultiplier: 1.0)
        let after = try Evaluator.evaluate(spec: spec, parameters: result.training.parameters, data: test).accuracy
        #expect(result.samplingRate == 100.0 / 3000)
        #expect(result.training.steps == 3 * 30)
        #expect(result.noiseMultiplier == 1)
        #expect(after > max(0.85, before + 0.2), "accuracy \(before) → \(after)")
        // What that run cost: 90 steps at q = 1/30 and σ ≈ 1.
        let epsilon = try Accountant.epsilon(noiseMultiplier: result.noiseMultiplier, samplingRate: result.samplingRate,
                                             steps: result.training.steps, delta: 1e-5)
        #expect(epsilon > 0.5 && epsilon < 3, "ε = \(epsilon)")
    }

    @Test func noiseIsWhatMovesAnUntrainableModel() throws {
        // Labels all 0 and a clip of 10⁻⁶: the clipped gradients are negligible, so any movement is the noise,
        // of std σC/(qN) per step.
        let spec = try ModelSpec(architecture: .logreg, inputFeatures: 4, hidden: [], classCount: 2)
        let data = try Dataset(features: [Float](repeating: 1, count: 400), labels: [Int32](repeating: 0, count: 100),
                               featureCount: 4, classCount: 2)
        let start = [Float](repeating: 0, count: spec.parameterCount)
        let config = TrainingConfig(localEpochs: 1, batchSize: 100, learningRate: 1, momentum: 0)
        let quiet = try PrivateTrainer.train(spec: spec, parameters: start, data: data, config: config, clipNorm: 1e-6,
                                             noiseMultiplier: 0)
        #expect(quiet.training.parameters.allSatisfy { abs($0) < 1e-5 })
        let noisy = try PrivateTrainer.train(spec: spec, parameters: start, data: data, config: config, clipNorm: 1e-6,
                                             noiseMultiplier: 1e5)
        // One step (q = 1): noise std σC/(qN) = 10⁵·10⁻⁶/100 = 10⁻³ per parameter.
        let moved = noisy.training.parameters.map { Double($0) }
        #expect(moved.contains { abs($0) > 1e-4 }, "\(moved)")
        #expect(moved.allSatisfy { abs($0) < 6e-3 }, "\(moved)")
    }

    /// Settings no run spec should carry still give an error, never a trap: an infinite clip or multiplier (the
    /// noise's scale would be infinite), a batch of 0 (an infinite number of steps), more classes than the model.
    @Test func impossibleSettingsAreErrors() throws {
        let spec = try ModelSpec(architecture: .logreg, inputFeatures: 4, hidden: [], classCount: 2)
        let data = try Dataset(features: [Float](repeating: 1, count: 40), labels: [Int32](repeating: 0, count: 10),
                               featureCount: 4, classCount: 2)
        let start = [Float](repeating: 0, count: spec.parameterCount)
        let good = TrainingConfig(localEpochs: 1, batchSize: 5, learningRate: 1, momentum: 0)
        for (clip, sigma) in [(Double.infinity, 1.0), (1, .infinity), (1, .nan), (.nan, 1), (0, 1), (1e200, 1e200)] {
            #expect(throws: DataError.self, "clip \(clip), σ \(sigma)") {
                try PrivateTrainer.train(spec: spec, parameters: start, data: data, config: good, clipNorm: clip, noiseMultiplier: sigma)
            }
        }
        for config in [TrainingConfig(localEpochs: 1, batchSize: 0, learningRate: 1, momentum: 0),
                       TrainingConfig(localEpochs: 0, batchSize: 5, learningRate: 1, momentum: 0)] {
            #expect(throws: DataError.self) {
                try PrivateTrainer.train(spec: spec, parameters: start, data: data, config: config, clipNorm: 1, noiseMultiplier: 1)
            }
        }
        let threeClasses = try Dataset(features: [Float](repeating: 1, count: 40), labels: [Int32](repeating: 2, count: 10),
                                       featureCount: 4, classCount: 3)
        #expect(throws: DataError.self) {
            try PrivateTrainer.train(spec: spec, parameters: start, data: threeClasses, config: good, clipNorm: 1, noiseMultiplier: 1)
        }
        // And the same data within bounds trains.
        _ = try PrivateTrainer.train(spec: spec, parameters: start, data: data, config: good, clipNorm: 1, noiseMultiplier: 1)
    }
}
