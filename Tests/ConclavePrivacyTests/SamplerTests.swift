import ConclaveCrypto
import ConclavePrivacy
import Foundation
import Testing

/// Distribution checks for the exact samplers. Each statistic is compared with its exact expectation using a
/// bound of 5 standard errors (or a 5-sigma binomial band), so each check has a false-alarm rate below 10⁻⁶.
@Suite struct SamplerTests {
    typealias Q = DiscreteSamplers.Rational

    /// Exact moments of N_ℤ(0, σ²) by summing the mass function.
    func exactMoments(_ sigma2: Double) -> (variance: Double, fourth: Double, tail: (Int) -> Double) {
        let limit = Int(sigma2.squareRoot() * 40) + 10
        var z = 0.0, m2 = 0.0, m4 = 0.0
        var p = [Double]()
        for x in -limit...limit {
            let w = exp(-Double(x * x) / (2 * sigma2))
            p.append(w)
            z += w; m2 += w * Double(x * x); m4 += w * pow(Double(x), 4)
        }
        let tail: (Int) -> Double = { k in
            (-limit...limit).filter { abs($0) > k }.reduce(0.0) { $0 + p[$1 + limit] } / z
        }
        return (m2 / z, m4 / z, tail)
    }

    @Test(arguments: [0.5, 4.0, 100.0, 2500.0]) func discreteGaussianHasTheRightMomentsAndTails(_ sigma2: Double) {
        var rng = ChaChaDRBG(seed: [UInt8](repeating: UInt8(sigma2.truncatingRemainder(dividingBy: 200)), count: 32))
        let n = 40_000
        let samples = (0..<n).map { _ in Double(DiscreteSamplers.discreteGaussian(variance: Q(approximating: sigma2), using: &rng)) }
        let exact = exactMoments(sigma2)
        let mean = samples.reduce(0, +) / Double(n)
        #expect(abs(mean) < 5 * (exact.variance / Double(n)).squareRoot(), "mean \(mean)")
        let variance = samples.reduce(0) { $0 + $1 * $1 } / Double(n)
        let varianceSE = ((exact.fourth - exact.variance * exact.variance) / Double(n)).squareRoot()
        #expect(abs(variance - exact.variance) < 5 * varianceSE, "variance \(variance) vs \(exact.variance)")
        // Tail beyond 2σ: a binomial count.
        let k = Int((2 * sigma2.squareRoot()).rounded(.down))
        let p = exact.tail(k)
        let count = Double(samples.filter { abs($0) > Double(k) }.count)
        #expect(abs(count - Double(n) * p) < 5 * (Double(n) * p * (1 - p)).squareRoot() + 1, "tail \(count) vs \(Double(n) * p)")
    }

    @Test func discreteLaplaceHasTheRightVariance() {
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 7, count: 32))
        let n = 40_000, b = 3.0  // scale 3: P(x) ∝ e^{−|x|/3}
        let samples = (0..<n).map { _ in Double(DiscreteSamplers.discreteLaplace(scale: Q(3), using: &rng)) }
        let r = exp(-1 / b)
        let variance = 2 * r / ((1 - r) * (1 - r))  // of the two-sided geometric distribution
        let fourth = (0..<2000).reduce(0.0) { $0 + 2 * pow(Double($1), 4) * pow(r, Double($1)) } * (1 - r) / (1 + r)
        let observed = samples.reduce(0) { $0 + $1 * $1 } / Double(n)
        #expect(abs(observed - variance) < 5 * ((fourth - variance * variance) / Double(n)).squareRoot(),
                "variance \(observed) vs \(variance)")
        #expect(abs(samples.reduce(0, +) / Double(n)) < 5 * (variance / Double(n)).squareRoot())
    }

    @Test func bernoulliOfExpMinusGammaHasTheRightRate() {
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 9, count: 32))
        let n = 100_000
        for gamma in [Q(1, 3), Q(5, 2)] {
            let p = exp(-Double(gamma.numerator) / Double(gamma.denominator))
            let hits = Double((0..<n).filter { _ in DiscreteSamplers.bernoulliExpMinus(gamma, using: &rng) }.count)
            #expect(abs(hits - Double(n) * p) < 5 * (Double(n) * p * (1 - p)).squareRoot(), "γ \(gamma): \(hits / Double(n)) vs \(p)")
        }
    }
}

extension SamplerTests {
    @Test(arguments: [0.01, 1.0, 37.5]) func latticeGaussianNoiseHasTheRequestedSpread(_ sigma: Double) {
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 11, count: 32))
        let noise = GaussianNoise(standardDeviation: sigma)
        let n = 40_000
        let samples = (0..<n).map { _ in noise.sample(using: &rng) }
        let mean = samples.reduce(0, +) / Double(n)
        let variance = samples.reduce(0) { $0 + $1 * $1 } / Double(n)
        // For a Gaussian, Var(x²) = 2σ⁴: 5 standard errors.
        #expect(abs(mean) < 5 * sigma / Double(n).squareRoot())
        #expect(abs(variance - sigma * sigma) < 5 * (2 / Double(n)).squareRoot() * sigma * sigma, "variance \(variance)")
        let beyond = Double(samples.filter { abs($0) > 2 * sigma }.count)
        let p = erfc(2 / 2.0.squareRoot())  // P(|N(0,1)| > 2)
        #expect(abs(beyond - Double(n) * p) < 5 * (Double(n) * p * (1 - p)).squareRoot())
    }
}
