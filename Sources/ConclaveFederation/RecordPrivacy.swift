public import ConclaveLearning
public import ConclavePrivacy

/// One silo's DP-SGD plan for a `record`-mode run: its sampling rate q = batch/n (its own n), its noise
/// multiplier (the run's, or calibrated so that its own ε after the planned rounds meets the run's budget),
/// and what every round of training costs. The silo holds and enforces it; the coordinator only reads reports.
public struct RecordPrivacyPlan: Sendable, Equatable, Codable {
    public let samplingRate: Double
    public let noiseMultiplier: Double
    public let clipNorm: Double
    public let stepsPerRound: Int
    public let plannedRounds: Int
    public let delta: Double
    public let accountant: AccountantKind

    public init(privacy: PrivacyConfig, examples: Int, training: TrainingConfig, plannedRounds: Int) throws(FederationError) {
        guard examples > 0 else { throw FederationError(.invalidArgument, "record privacy needs at least one local record") }
        guard plannedRounds >= 1 else { throw FederationError(.invalidArgument, "record privacy needs at least one planned round") }
        samplingRate = PrivateTrainer.samplingRate(batchSize: training.batchSize, examples: examples)
        stepsPerRound = PrivateTrainer.steps(batchSize: training.batchSize, examples: examples, epochs: training.localEpochs)
        clipNorm = privacy.clipNorm
        self.plannedRounds = plannedRounds
        delta = privacy.delta
        accountant = privacy.accountant
        if let sigma = privacy.noiseMultiplier {
            noiseMultiplier = sigma
        } else {
            let target = privacy.epsilon ?? 1
            do {
                noiseMultiplier = try Accountant.calibrate(epsilon: target, samplingRate: samplingRate,
                                                           steps: stepsPerRound * plannedRounds, delta: delta,
                                                           accountant: accountant)
            } catch {
                throw FederationError(.invalidArgument, "privacy.epsilon = \(target) for \(examples) records: \(error.message)")
            }
        }
    }

    /// One round's release (every local step) as the ledger records and costs it.
    public var release: Mechanism {
        .subsampledGaussian(samplingRate: samplingRate, noiseMultiplier: noiseMultiplier, steps: stepsPerRound)
    }

    /// The silo's ε after it has trained in `rounds` rounds of this run.
    public func spent(afterRounds rounds: Int) -> SiloPrivacy {
        let steps = rounds * stepsPerRound
        let epsilon = steps == 0 ? 0 : ((try? Accountant.epsilon(noiseMultiplier: noiseMultiplier, samplingRate: samplingRate,
                                                                  steps: steps, delta: delta, accountant: accountant)) ?? .infinity)
        return SiloPrivacy(epsilon: epsilon, delta: delta, noiseMultiplier: noiseMultiplier, samplingRate: samplingRate,
                           steps: steps)
    }
}

/// What a silo reports it has spent on its own records so far in a run (cumulative over its rounds).
public struct SiloPrivacy: Sendable, Equatable, Codable {
    public var epsilon: Double
    public var delta: Double
    public var noiseMultiplier: Double
    public var samplingRate: Double
    public var steps: Int

    public init(epsilon: Double, delta: Double, noiseMultiplier: Double, samplingRate: Double, steps: Int) {
        self.epsilon = epsilon
        self.delta = delta
        self.noiseMultiplier = noiseMultiplier
        self.samplingRate = samplingRate
        self.steps = steps
    }
}
