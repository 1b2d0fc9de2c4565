public import ConclavePrivacy

/// Central DP-FedAvg for one round, in one value: the noise on the secure sum (the update's, and with adaptive
/// clipping the clip-bit count's), the multiplier that achieves, and the release as the privacy ledger
/// describes and costs it. The coordinator builds it from the run and the round's members; a silo builds the
/// same from its task's parameters to price its own release; the noise source is the caller's.
public struct CentralMechanism: Sendable, Equatable {
    /// The run's noise multiplier z (the two releases together cost one Gaussian release at z).
    public let z: Double
    /// C: the L2 bound of each silo's input, the sum's sensitivity.
    public let clipNorm: Double
    public let dimension: Int
    /// σ_b of the noisy count of silos within C (adaptive clipping only).
    public let countStddev: Double?

    public init(z: Double, clipNorm: Double, dimension: Int, countStddev: Double?) {
        self.z = z
        self.clipNorm = clipNorm
        self.dimension = dimension
        self.countStddev = countStddev
    }

    /// The round's mechanism under the run's privacy: σ_b from adaptive clipping for `members` silos.
    public init?(privacy p: PrivacyConfig, clipNorm: Double, dimension: Int, members: Int) {
        guard p.mode == .central, let z = p.noiseMultiplier else { return nil }
        self.init(z: z, clipNorm: clipNorm, dimension: dimension,
                  countStddev: p.adaptiveClipping?.countStddev(members: members, noiseMultiplier: z))
    }

    /// z_Δ, the update's multiplier once the count had its share (z without adaptive clipping); nil when σ_b
    /// leaves nothing for the update.
    public var updateMultiplier: Double? {
        guard let sigmaB = countStddev else { return z }
        return AdaptiveClipping.updateMultiplier(total: z, countStddev: sigmaB)
    }

    /// One silo's release in one round, as the ledger records and costs it (every parameter, lattice included).
    public var release: Mechanism {
        .centralGaussian(noiseMultiplier: z, clipNorm: clipNorm, dimension: dimension, countStddev: countStddev,
                         resolutionBits: Self.resolutionBits)
    }

    /// The multiplier achieved: z less the lattice rounding's share, and with adaptive clipping the combination
    /// of the update's and the count's (1/z² = 1/z_Δ² + 1/σ_b²).
    public var multiplier: Double { release.effectiveMultiplier }

    /// The noise lattice's resolution (`GaussianNoise`'s default): 2^−20 of σ.
    public static let resolutionBits = 20

    /// Noises the decoded sum (N(0, (z_Δ·C)²) per value on a lattice) and, with adaptive clipping, the count.
    public func noise(sum: inout [Float], count: inout [Float], using rng: inout some RandomNumberGenerator) throws(FederationError) {
        guard let update = updateMultiplier else {
            throw FederationError(.failedPrecondition,
                "adaptive clipping's count noise leaves no noise for the update; raise privacy.count_noise_stddev above the noise multiplier")
        }
        GaussianNoise(standardDeviation: update * clipNorm, resolutionBits: Self.resolutionBits).add(to: &sum, using: &rng)
        if let sigmaB = countStddev, !count.isEmpty { GaussianNoise(standardDeviation: sigmaB, resolutionBits: Self.resolutionBits).add(to: &count, using: &rng) }
    }
}
