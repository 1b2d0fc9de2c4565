#if canImport(Glibc)
import Glibc
#endif
import ConclaveCrypto

/// The distributed discrete Gaussian mechanism (Kairouz, Liu & Steinke, ICML 2021): every silo turns its
/// clipped update into integers — randomized Hadamard rotation, scaling by 1/γ, conditional randomized rounding —
/// adds its own share of discrete Gaussian noise, and wraps into Z_2³². Secure aggregation sums the words; only
/// the noisy sum is ever unmasked, so the coordinator never holds an un-noised aggregate. The privacy of the sum
/// depends on how many shares it holds: the accountant charges the survivors, not the plan.
public struct DistributedDiscreteGaussian: Sendable, Equatable, Codable {
    /// L2 bound c on each silo's input (before scaling).
    public let clipNorm: Double
    /// The grid step γ: inputs are scaled by 1/γ before rounding.
    public let granularity: Double
    /// Each silo's noise share, as a standard deviation in input units.
    public let localStddev: Double
    /// Conditional rounding retries until the rounded norm is within `roundedBound` (KLS Prop. 22, β = e^−½).
    public let beta: Double
    public let rotationSeed: [UInt8]
    public let dimension: Int

    /// Orders at which the bound of KLS Prop. 14 (stated for every α ≥ 1) is evaluated: the RDP accountant's, so a
    /// σ calibrated there meets its budget here.
    public static let orders: [Double] = RDP.defaultOrders

    /// Sizes the grid for `silos` inputs: the per-coordinate sum stays within ±2³¹ with `k` standard deviations
    /// to spare (signal spread flat by the rotation, KLS Eq. 61 with ρ = 1, plus every silo's noise and rounding).
    public init(clipNorm: Double, localStddev: Double, silos: Int, dimension: Int, rotationSeed: [UInt8],
                beta: Double = 0.6065306597126334, k: Double = 8) {  // β = e^−½
        precondition(clipNorm > 0 && localStddev > 0 && silos >= 1 && dimension >= 1)
        self.clipNorm = clipNorm
        self.localStddev = localStddev
        self.beta = beta
        self.rotationSeed = rotationSeed
        self.dimension = dimension
        let padded = Double(RandomizedHadamard.paddedDimension(for: dimension))
        let n = Double(silos)
        var gamma = k * (n * n * clipNorm * clipNorm / padded + n * localStddev * localStddev).squareRoot() / 0x1p31
        // The rounding adds up to γ²/4 of variance per silo; one refinement covers it.
        gamma = k * (n * n * clipNorm * clipNorm / padded + n * (localStddev * localStddev + gamma * gamma / 4)).squareRoot() / 0x1p31
        // No finer than 2⁻²⁰ of a noise share: the exact sampler's 128-bit arithmetic stays in range, and the
        // rounding's variance (γ²/4) is 2⁻⁴² of the noise's.
        granularity = max(gamma, localStddev * 0x1p-20)
    }

    /// Exactly these parameters (as a task carries them); nil when they cannot be a valid mechanism.
    public init?(clipNorm: Double, granularity: Double, localStddev: Double, beta: Double, rotationSeed: [UInt8],
                 dimension: Int) {
        guard clipNorm > 0, clipNorm.isFinite, granularity > 0, granularity.isFinite, localStddev > 0,
              localStddev.isFinite, localStddev / granularity <= 0x1p21, beta > 0, beta < 1, rotationSeed.count == 32,
              dimension >= 1 else { return nil }
        self.clipNorm = clipNorm
        self.granularity = granularity
        self.localStddev = localStddev
        self.beta = beta
        self.rotationSeed = rotationSeed
        self.dimension = dimension
    }

    public var paddedDimension: Int { RandomizedHadamard.paddedDimension(for: dimension) }

    /// B: the L2 norm a rounded input may have (in grid units), KLS Prop. 22.
    public var roundedBound: Double {
        let c = clipNorm / granularity, d = Double(paddedDimension)
        let loose = c + d.squareRoot()
        let tight = (c * c + d / 4 + (2 * log(1 / beta)).squareRoot() * (c + d.squareRoot() / 2)).squareRoot()
        return min(loose, tight)
    }

    /// A silo's words: its clipped input rotated, scaled, rounded (retrying above the bound), noised, wrapped.
    public func encode(_ clipped: [Float], rotation: RandomizedHadamard, using rng: inout some RandomNumberGenerator) -> [UInt32] {
        let scaled = rotation.rotate(clipped).map { $0 / granularity }
        let bound = roundedBound
        var rounded = [Int64](repeating: 0, count: scaled.count)
        repeat {
            var norm2 = 0.0
            for i in scaled.indices {
                let floor = scaled[i].rounded(.down)
                let up = Double(rng.next() >> 11) * 0x1p-53 < scaled[i] - floor
                rounded[i] = Int64(floor) + (up ? 1 : 0)
                norm2 += Double(rounded[i]) * Double(rounded[i])
            }
            if norm2.squareRoot() <= bound { break }
        } while true
        let variance = DiscreteSamplers.Rational(approximating: pow(localStddev / granularity, 2), denominator: 1 << 8)
        return rounded.map { value in
            let noisy = Int128(value) + DiscreteSamplers.discreteGaussian(variance: variance, using: &rng)
            return UInt32(truncatingIfNeeded: Int64(truncatingIfNeeded: noisy))
        }
    }

    /// The noisy sum in input units, rotated back: the modular sum read as signed, times γ.
    public func decode(sum: [UInt32], rotation: RandomizedHadamard) -> [Double] {
        rotation.unrotate(sum.map { Double(Int32(bitPattern: $0)) * granularity })
    }

    /// RDP of one release whose sum holds `shares` noise shares (KLS Prop. 14, Thm. 1).
    public func rdp(order alpha: Double, shares: Int) -> Double {
        guard shares >= 1 else { return .infinity }
        let s = Double(shares), d = Double(paddedDimension)
        let sigma = localStddev / granularity  // one share, in grid units
        let b = roundedBound
        let l2 = b / (s.squareRoot() * sigma)
        let l1 = min(b * b, d.squareRoot() * b) / (s.squareRoot() * sigma)
        var tau = 0.0
        if shares > 1 {
            for k in 1..<shares { tau += exp(-2 * Double.pi * Double.pi * sigma * sigma * Double(k) / Double(k + 1)) }
        }
        tau *= 10
        let term1 = alpha / 2 * l2 * l2 + tau * d
        let term2 = alpha / 2 * (l2 * l2 + 2 * l1 * tau + tau * tau * d)
        let term3 = alpha / 2 * pow(l2 + d.squareRoot() * tau, 2)
        return min(term1, term2, term3)
    }

    /// ε at δ after releases whose sums held these numbers of shares (each round's survivors).
    public static func epsilon(rounds: [(mechanism: DistributedDiscreteGaussian, shares: Int)], delta: Double) -> Double {
        guard !rounds.isEmpty else { return 0 }
        let rdp = orders.map { alpha in rounds.reduce(0.0) { $0 + $1.mechanism.rdp(order: alpha, shares: $1.shares) } }
        return RDP.epsilon(rdp: rdp, orders: orders, delta: delta).epsilon
    }
}

extension DistributedDiscreteGaussian {
    /// One sum's release as the ledger records and costs it: sized for `planned` shares, holding `unmasked`.
    public func release(planned: Int, unmasked: Int) -> Mechanism {
        .distributedDiscreteGaussian(clipNorm: clipNorm, granularity: granularity, localStddev: localStddev, beta: beta,
                                     dimension: dimension, sharesPlanned: planned, sharesUnmasked: unmasked)
    }
}
