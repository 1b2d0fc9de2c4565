#if canImport(Glibc)
import Glibc
#endif

/// Gaussian noise for real-valued releases (central DP-FedAvg) without floating-point sampling: each value is
/// first rounded to the lattice step·ℤ (step = 2^(⌊log₂σ⌋ − k), k = `resolutionBits`), then gets an exact
/// discrete Gaussian N_ℤ(0, (σ/step)²)·step. The release takes only lattice values — adding lattice noise to an
/// unrounded value would publish its fractional part, the kind of leak Mironov's attack on textbook samplers
/// exploits — and its privacy is that of the discrete Gaussian (Rényi divergence at most the continuous one's,
/// CKS 2020 Thm. 4) with the sensitivity grown by the rounding: Δ₂ + step·√d (see
/// `effectiveNoiseMultiplier`).
public struct GaussianNoise: Sendable {
    public let standardDeviation: Double
    public let resolutionBits: Int
    private let variance: DiscreteSamplers.Rational
    /// The lattice spacing of the released values.
    public let step: Double

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

    /// Rounds every value to the lattice and adds independent noise.
    public func add(to values: inout [Float], using rng: inout some RandomNumberGenerator) {
        for i in values.indices {
            values[i] = Float((Double(values[i]) / step).rounded() * step + sample(using: &rng))
        }
    }

    /// σ/Δ for a query of L2 sensitivity `sensitivity` over `dimension` values, after the rounding to the
    /// lattice (which moves two neighbouring inputs apart by at most step·√d more).
    public func effectiveNoiseMultiplier(sensitivity: Double, dimension: Int) -> Double {
        standardDeviation / (sensitivity + step * Double(dimension).squareRoot())
    }
}
