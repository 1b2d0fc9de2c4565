public import ConclaveLearning
import ConclaveTensor

/// The silo side of a round: train from the global weights on local data and return the difference.
/// Shared by the agent process and the in-process simulation, so both train exactly alike.
public enum LocalUpdate {
    public struct Result: Sendable {
        public var update: [Float]
        public var trainLoss: Double
        public var seconds: Double
        public var examples: Int
    }

    /// With a `privacy` plan (record mode) the silo trains by DP-SGD instead.
    public static func compute(model: ModelSpec, training: TrainingConfig, round: Int, globalWeights: [Float],
                               siloID: String, data: Dataset, privacy: RecordPrivacyPlan? = nil) throws(DataError) -> Result {
        var config = training
        config.seed = shuffleSeed(base: training.seed, silo: siloID, round: round)
        let clock = ContinuousClock()
        let start = clock.now
        let trained = if let privacy {
            try PrivateTrainer.train(spec: model, parameters: globalWeights, data: data, config: config,
                                     clipNorm: privacy.clipNorm, noiseMultiplier: privacy.noiseMultiplier).training
        } else {
            try Trainer.train(spec: model, parameters: globalWeights, data: data, config: config)
        }
        let elapsed = clock.now - start
        return Result(update: trained.parameters.subtracting(globalWeights), trainLoss: trained.meanLoss,
                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18,
                      examples: trained.examples)
    }

    /// A per-silo, per-round shuffling seed that is stable across processes (FNV-1a of the silo id).
    public static func shuffleSeed(base: UInt64, silo: String, round: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in silo.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return base ^ h ^ (UInt64(round) &* 0x9E37_79B9_7F4A_7C15)
    }
}
