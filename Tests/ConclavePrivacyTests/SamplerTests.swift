import ConclaveCrypto
@testable import ConclavePrivacy
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
    @Test func latticeNoiseReleasesOnlyLatticeValues() {
        var rng = ChaChaDRBG(seed: [UInt8](repeating: 3, count: 32))
        let noise = GaussianNoise(standardDeviation: 1.6)
        var values: [Float] = (0..<500).map { Float($0) * 0.001234567 }
        noise.add(to: &values, using: &rng)
        #expect(values.allSatisfy { v in let k = Double(v) / noise.step; return abs(k - k.rounded()) < 1e-6 })
    }

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

/// The fast continuous noise of DP-SGD: ziggurat variates summed (Holohan & Braghin). Kolmogorov–Smirnov
/// against the exact normal CDF at a critical value of 2.7/√n (false alarm ≈ 2·e^(−2·2.7²) < 10⁻⁶), plus
/// moments and a far tail that only the ziggurat's tail branch can produce, at 5 standard errors.
extension SamplerTests {
    static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    func checkNormal(_ samples: [Double], sigma: Double, _ what: String) {
        let n = Double(samples.count)
        let sorted = samples.sorted()
        var d = 0.0
        for (i, x) in sorted.enumerated() {
            let f = Self.normalCDF(x / sigma)
            d = max(d, abs(f - Double(i) / n), abs(f - Double(i + 1) / n))
        }
        #expect(d * n.squareRoot() < 2.7, "\(what): KS statistic √n·D = \(d * n.squareRoot())")
        let mean = samples.reduce(0, +) / n
        #expect(abs(mean) < 5 * sigma / n.squareRoot(), "\(what): mean \(mean)")
        let variance = samples.reduce(0) { $0 + $1 * $1 } / n
        #expect(abs(variance - sigma * sigma) < 5 * (2 / n).squareRoot() * sigma * sigma, "\(what): variance \(variance)")
        // E x⁴ = 3σ⁴, Var x⁴ = 96σ⁸.
        let fourth = samples.reduce(0) { $0 + pow($1, 4) } / n
        #expect(abs(fourth - 3 * pow(sigma, 4)) < 5 * (96 / n).squareRoot() * pow(sigma, 4), "\(what): fourth moment \(fourth)")
        let p = erfc(3.8 / 2.0.squareRoot())  // beyond the ziggurat's base strip edge R ≈ 3.654
        let beyond = Double(samples.filter { abs($0) > 3.8 * sigma }.count)
        #expect(abs(beyond - n * p) < 5 * (n * p).squareRoot() + 1, "\(what): \(beyond) beyond 3.8σ, expected \(n * p)")
    }

    @Test func zigguratDrawsAreStandardNormal() {
        var rng = NoiseRandom()
        let (x, f) = Ziggurat.tables
        // The layers close up: the top one (under the peak) has the same area V as every other.
        #expect(abs(f[255] + Ziggurat.v / x[255] - 1) < 1e-9, "top layer edge \(x[255])")
        checkNormal((0..<200_000).map { _ in Ziggurat.normal(using: &rng, x: x, f: f) }, sigma: 1, "ziggurat")
        // The 32-bit draws the noise loop uses, words taken from the same generator.
        let (w, b) = Ziggurat.wordTables
        checkNormal((0..<200_000).map { _ in
            Ziggurat.draw(word: UInt32(truncatingIfNeeded: rng.next()), using: &rng, scale: w, bound: b, x: x, f: f)
        }, sigma: 1, "32-bit ziggurat")
    }

    /// Words that fail the rectangle test in the base strip go to the tail: every draw lies beyond R, and the
    /// mean excess matches the normal tail's, E[X − R | X > R] = φ(R)/Q(R) − R.
    @Test func baseStripWordsBeyondTheRectangleDrawFromTheTail() {
        var rng = NoiseRandom()
        let (x, f) = Ziggurat.tables, n = 20_000, r = Ziggurat.r
        var excess = 0.0, beyond = 0
        for k in 0..<n {
            let word = UInt32.max & ~0x1ff | (k % 2 == 0 ? 0 : 0x100)  // layer 0, top position, sign alternating
            let value = Ziggurat.finish(word: word, using: &rng, x: x, f: f)
            if abs(value) > r { beyond += 1 }
            #expect((value < 0) == (k % 2 == 1))
            excess += abs(value) - r
        }
        #expect(beyond == n)
        let phi = exp(-r * r / 2) / (2 * Double.pi).squareRoot(), tail = erfc(r / 2.0.squareRoot()) / 2
        let expected = phi / tail - r, spread = 1 / r  // the excess is about exponential with rate R
        #expect(abs(excess / Double(n) - expected) < 5 * spread / Double(n).squareRoot(), "mean excess \(excess / Double(n)), expected \(expected)")
    }

    @Test func noiseFoldsIntoAMomentumBuffer() {
        var rng = NoiseRandom()
        let noise = SummedGaussianNoise(standardDeviation: 1.5), n = 200_000
        let src = [Float](repeating: 2, count: n)
        var dst = [Float](repeating: 1, count: n)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                noise.noised(s.baseAddress!, count: n, scaledBy: 0.25, into: d.baseAddress!, decay: 0.5, using: &rng)
            }
        }
        // dst = 0.5·1 + (2 + N(0, 1.5²))·0.25
        checkNormal(dst.map { (Double($0) - 0.5) / 0.25 - 2 }, sigma: 1.5, "folded noise")
    }

    @Test(arguments: [0.3, 2.5]) func summedNoiseHasTheRequestedSpread(_ sigma: Double) {
        var rng = NoiseRandom()
        let noise = SummedGaussianNoise(standardDeviation: sigma)
        var values = [Float](repeating: 0, count: 200_000)
        noise.add(to: &values, using: &rng)
        checkNormal(values.map(Double.init), sigma: sigma, "σ = \(sigma)")
        // Adding noise to a vector moves it, and the same call twice never gives the same noise.
        var again = [Float](repeating: 0, count: 200_000)
        noise.add(to: &again, using: &rng)
        #expect(values != again)
    }
}
