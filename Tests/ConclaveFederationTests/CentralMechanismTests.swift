import ConclaveCrypto
import ConclaveFederation
import ConclaveLearning
import ConclavePrivacy
import Testing

/// Central DP's one type: the coordinator's round mechanism and the one a silo rebuilds from its task's
/// parameters price the release identically (what the ledger charges is what the silo charged itself), and the
/// noise comes from the source the caller injects, at the standard deviation z_Δ·C.
@Suite struct CentralMechanismTests {
    @Test func theSiloPricesTheReleaseAsTheCoordinatorChargesIt() throws {
        let model = try ModelSpec(architecture: .logreg, inputFeatures: 64, hidden: [], classCount: 10)
        let privacy = try PrivacyConfig(mode: .central, noiseMultiplier: 1.2, delta: 1e-5, adaptiveClipping: AdaptiveClipping())
        let spec = try RunSpec(name: "dp", model: model, rounds: 2, training: TrainingConfig(), minSilos: 2, silosPerRound: 3,
                               roundDeadlineSeconds: 10, secureAggregation: SecureAggregationConfig(clipNorm: 2), privacy: privacy)
        let machine = RoundStateMachine(runID: "r", spec: spec, globalWeights: [Float](repeating: 0, count: model.parameterCount))
        let coordinator = try #require(machine.centralMechanism(members: 3))
        // What a task tells the silo: z, C, the model's size and σ_b.
        let silo = CentralMechanism(z: 1.2, clipNorm: 2, dimension: model.parameterCount, countStddev: coordinator.countStddev)
        #expect(silo.release == coordinator.release)
        // With adaptive clipping the combination is still (a hair under, for the lattices) z.
        #expect(coordinator.countStddev != nil && coordinator.multiplier < 1.2 && coordinator.multiplier > 1.2 * 0.999)
        // The ledger costs it as one Gaussian release at that multiplier, and says so in its parameters.
        let p = coordinator.release.parameters
        #expect(p["noise_multiplier"] == coordinator.multiplier && p["sampling_rate"] == 1 && p["steps"] == 1 && p["z"] == 1.2)
        #expect(coordinator.release.rdp(order: 8) == RDP.subsampledGaussian(samplingRate: 1, noiseMultiplier: coordinator.multiplier, order: 8))
    }

    @Test func theNoiseComesFromTheInjectedSourceAtZDeltaTimesC() throws {
        let mechanism = CentralMechanism(z: 0.5, clipNorm: 4, dimension: 20_000, countStddev: nil)
        var a = [Float](repeating: 0, count: 20_000), b = a, c = a, none = [Float]()
        var seeded = ChaChaDRBG(seed: Array(repeating: 7, count: 32)), again = ChaChaDRBG(seed: Array(repeating: 7, count: 32))
        var other = ChaChaDRBG(seed: Array(repeating: 8, count: 32))
        try mechanism.noise(sum: &a, count: &none, using: &seeded)
        try mechanism.noise(sum: &b, count: &none, using: &again)
        try mechanism.noise(sum: &c, count: &none, using: &other)
        #expect(a == b && a != c)
        let variance = a.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(a.count)
        #expect(abs(variance.squareRoot() - 2.0) < 0.05, "std \(variance.squareRoot()), expected z·C = 2")
        // A count noise that leaves nothing for the update is refused, naming the setting.
        let starved = CentralMechanism(z: 2, clipNorm: 1, dimension: 10, countStddev: 1)
        var x = [Float](repeating: 0, count: 10), bits: [Float] = [0]
        #expect(throws: FederationError.self) { try starved.noise(sum: &x, count: &bits, using: &seeded) }
    }
}
