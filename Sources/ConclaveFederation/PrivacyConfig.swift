public import ConclavePrivacy

/// The `[privacy]` table of a run spec: which differential-privacy mechanism protects the run, and its
/// parameters. The unit of privacy in `central` mode is one silo's whole contribution to a round.
public struct PrivacyConfig: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// DP-FedAvg: the coordinator adds N(0, (σC)²) to the securely aggregated sum of clipped updates.
        case central
        case distributed
        case record
    }

    public var mode: Mode
    /// Noise standard deviation over the clipping bound C (for `central`, C is `secure_aggregation.clip_norm`).
    public var noiseMultiplier: Double
    public var delta: Double
    public var accountant: AccountantKind

    public init(mode: Mode, noiseMultiplier: Double, delta: Double = 1e-5,
                accountant: AccountantKind = .pld) throws(FederationError) {
        guard noiseMultiplier > 0, noiseMultiplier.isFinite else {
            throw FederationError(.invalidArgument, "privacy.noise_multiplier must be positive, got \(noiseMultiplier)")
        }
        guard delta > 0, delta < 1 else { throw FederationError(.invalidArgument, "privacy.delta must be in (0, 1), got \(delta)") }
        self.mode = mode
        self.noiseMultiplier = noiseMultiplier
        self.delta = delta
        self.accountant = accountant
    }

    /// ε spent after `rounds` releases. Every live silo takes part in every round, so there is no sampling
    /// amplification (q = 1): fixed-size selection without replacement is not Poisson sampling, and claiming
    /// its amplification would overstate the guarantee.
    public func epsilon(afterRounds rounds: Int, noiseMultiplier sigma: Double? = nil) -> Double {
        (try? Accountant.epsilon(noiseMultiplier: sigma ?? noiseMultiplier, samplingRate: 1, steps: rounds, delta: delta,
                                 accountant: accountant)) ?? .infinity
    }

    /// The multiplier actually achieved by `GaussianNoise` at std σC on `dimension` values with sensitivity C
    /// (a hair below σ: rounding to its lattice adds step·√d to the sensitivity).
    public func effectiveNoiseMultiplier(clipNorm: Double, dimension: Int) -> Double {
        GaussianNoise(standardDeviation: noiseMultiplier * clipNorm)
            .effectiveNoiseMultiplier(sensitivity: clipNorm, dimension: dimension)
    }
}
