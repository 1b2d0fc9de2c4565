#if canImport(Glibc)
import Glibc
#endif

/// Gaussian noise for real-valued releases (central DP-FedAvg) without floating-point sampling: each value is
/// an exact discrete Gaussian on the lattice 2⁻ᵏ·ℤ (k = `resolutionBits`), N_ℤ(0, (σ·2ᵏ)²)·2⁻ᵏ. The output
/// takes only lattice values and its distribution does not depend on how a float library rounds, which is what
/// Mironov's attack on textbook samplers exploits; at 2⁻²⁰ relative resolution it is a Gaussian for every
/// accounting purpose (its Rényi divergence is at most the continuous one's, CKS 2020 Thm. 4).
public struct GaussianNoise: Sendable {
    public let standardDeviation: Double
    public let resolutionBits: Int
    private let variance: DiscreteSamplers.Rational
    private let step: Double

    public init(standardDeviation sigma: Double, resolutionBits: Int = 20) {
        precondition(sigma > 0 && sigma.isFinite, "noise needs a positive, finite standard deviation")
        standardDeviation = sigma
        self.resolutionBits = resolutionBits
        // Lattice step 2^(⌊log₂σ⌋ − k): a fixed number of points per standard deviation whatever σ is.
        step = exp2(Double(Int(log2(sigma).rounded(.down)) - resolutionBits))
        let scaled = sigma / step  // σ in lattice steps, between 2ᵏ and 2ᵏ⁺¹
        variance = DiscreteSamplers.Rational(approximating: scaled * scaled, denominator: 1 << 16)
    }

    public func sample(using rng: inout some RandomNumberGenerator) -> Double {
        Double(DiscreteSamplers.discreteGaussian(variance: variance, using: &rng)) * step
    }

    /// Adds independent noise to every value.
    public func add(to values: inout [Float], using rng: inout some RandomNumberGenerator) {
        for i in values.indices { values[i] += Float(sample(using: &rng)) }
    }
}
