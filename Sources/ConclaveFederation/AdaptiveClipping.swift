#if canImport(Glibc)
import Glibc
#endif

/// Adaptive clipping for central DP (Andrew, Thakkar, McMahan & Ramaswamy, NeurIPS 2021): each round every silo
/// also contributes one bit — was its update within the clip norm C? — securely summed beside its update; the
/// coordinator noises the count and moves C geometrically towards the target quantile of update norms:
/// C ← C·exp(−η(b̃ − γ)). The count's noise is paid for out of the run's noise multiplier z: the update's noise
/// becomes z_Δ = (z⁻² − σ_b⁻²)^(−½), so the two releases together cost exactly one Gaussian release at z
/// (bits are not centred here, so a silo moves the count by up to 1, hence σ_b rather than Andrew et al.'s 2σ_b).
public struct AdaptiveClipping: Sendable, Equatable, Codable {
    /// γ: the fraction of silos whose updates should fall within C.
    public var targetQuantile: Double
    /// η: the geometric step of C per round.
    public var learningRate: Double
    /// σ_b of the noisy count; nil: max(n/20, 2z) for n selected silos (Andrew et al.'s n/20, but never so
    /// small that the update's noise grows by more than 1/√(1 − ¼) ≈ 15 %).
    public var countNoiseStddev: Double?

    public init(targetQuantile: Double = 0.5, learningRate: Double = 0.2, countNoiseStddev: Double? = nil) throws(FederationError) {
        guard targetQuantile > 0, targetQuantile < 1 else {
            throw FederationError(.invalidArgument, "privacy.target_quantile must be in (0, 1), got \(targetQuantile)")
        }
        guard learningRate > 0, learningRate.isFinite else {
            throw FederationError(.invalidArgument, "privacy.clip_learning_rate must be positive, got \(learningRate)")
        }
        if let s = countNoiseStddev, !(s > 0 && s.isFinite) {
            throw FederationError(.invalidArgument, "privacy.count_noise_stddev must be positive, got \(s)")
        }
        self.targetQuantile = targetQuantile
        self.learningRate = learningRate
        self.countNoiseStddev = countNoiseStddev
    }

    /// σ_b for a round that selected `members` silos, under noise multiplier z.
    public func countStddev(members: Int, noiseMultiplier z: Double) -> Double {
        countNoiseStddev ?? max(Double(members) / 20, 2 * z)
    }

    /// z_Δ: what is left for the update once the count has had its share; nil when σ_b leaves nothing.
    public static func updateMultiplier(total z: Double, countStddev sigmaB: Double) -> Double? {
        let rest = 1 / (z * z) - 1 / (sigmaB * sigmaB)
        return rest > 0 ? 1 / rest.squareRoot() : nil
    }

    /// The next round's clip norm from the noisy fraction of silos that were within it.
    public func next(clipNorm: Double, noisyFraction: Double) -> Double {
        clipNorm * exp(-learningRate * (noisyFraction - targetQuantile))
    }
}
