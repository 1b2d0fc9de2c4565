import CGaussian
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

/// The fast continuous noise of DP-SGD: Box–Muller variates summed (Holohan & Braghin), by every kernel this CPU
/// runs. Each kernel must compute the construction's formula from its words (against a double-precision
/// reference), and its output must look normal: Kolmogorov–Smirnov (√n·D < 2.7: false alarm ≈ 10⁻⁶), the first,
/// second and fourth moments and a far tail, at 5 standard errors.
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
        let p = erfc(3.8 / 2.0.squareRoot())
        let beyond = Double(samples.filter { abs($0) > 3.8 * sigma }.count)
        #expect(abs(beyond - n * p) < 5 * (n * p).squareRoot() + 1, "\(what): \(beyond) beyond 3.8σ, expected \(n * p)")
    }

    /// The construction, in double from the same words: in each block of 16 coordinates, words 0–15 give the
    /// radii R = √(−2 ln u), u = (⌊w/2⌋ + ½)·2⁻³¹, words 16–31 the angles θ = 2π·w/2³², and coordinate k sums
    /// R_k cos θ_k and R_{k+1} sin θ_{k+1} (mod 16) — never both halves of one pair.
    static func reference(_ words: [UInt32], count: Int) -> [Double] {
        (0..<count).map { i in
            let block = i / 16 * 32, k = i % 16, next = (k + 1) % 16
            func radius(_ j: Int) -> Double { (-2 * log(Double(Float(words[block + j] >> 1) + 0.5) * 0x1p-31)).squareRoot() }
            func angle(_ j: Int) -> Double { 2 * Double.pi * Double(words[block + 16 + j]) * 0x1p-32 }
            return radius(k) * cos(angle(k)) + radius(next) * sin(angle(next))
        }
    }

    @Test(arguments: NoiseKernel.available) func kernelComputesTheConstructionFromItsWords(_ kernel: NoiseKernel) {
        var rng = NoiseRandom()
        let count = 16 * 2_000 + 5  // a partial block at the end
        var words = [UInt32](repeating: 0, count: conclave_gaussian_words(count))
        for i in words.indices { words[i] = UInt32(truncatingIfNeeded: rng.next()) }
        // Words that reach the edges: u's smallest and largest, each quadrant boundary of θ.
        let edges: [UInt32] = [0, 1, .max, .max - 1, 0x4000_0000, 0x8000_0000, 0xc000_0000, 0x2000_0000, 0x1fff_ffff]
        for (j, w) in edges.enumerated() { words[j] = w; words[16 + j] = edges[edges.count - 1 - j] }
        let expected = Self.reference(words, count: count)
        let src = (0..<count).map { Float($0 % 7) - 3 }
        var dst = [Float](repeating: 9, count: count + 3)  // past the end stays untouched
        var previous = dst
        for (scale, factor, decay) in [(1.0, 1.0, Float(0)), (0.3, 0.25, 0.5)] {
            previous = dst
            conclave_gaussian_noised(kernel.c, src, count, words, scale, factor, &dst, decay)
            var worst = 0.0
            for i in 0..<count {
                let released = (Double(src[i]) + expected[i] * scale) * factor
                let want = decay == 0 ? released : Double(decay) * Double(previous[i]) + released
                worst = max(worst, abs(Double(dst[i]) - want) / max(1, abs(want)))
            }
            #expect(worst < 4e-6, "\(kernel), decay \(decay): worst relative error \(worst)")
            #expect(dst[count...] == [9, 9, 9])
        }
        #expect(expected.map(abs).max()! > 6, "the edge words reach the far radius")
    }

    @Test(arguments: NoiseKernel.available) func noiseFoldsIntoAMomentumBuffer(_ kernel: NoiseKernel) {
        var rng = NoiseRandom()
        let noise = SummedGaussianNoise(standardDeviation: 1.5, kernel: kernel), n = 200_000
        let src = [Float](repeating: 2, count: n)
        var dst = [Float](repeating: 1, count: n)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                noise.noised(s.baseAddress!, count: n, scaledBy: 0.25, into: d.baseAddress!, decay: 0.5, using: &rng)
            }
        }
        // dst = 0.5·1 + (2 + N(0, 1.5²))·0.25
        checkNormal(dst.map { (Double($0) - 0.5) / 0.25 - 2 }, sigma: 1.5, "\(kernel): folded noise")
    }

    @Test(arguments: NoiseKernel.available, [0.3, 2.5]) func summedNoiseHasTheRequestedSpread(_ kernel: NoiseKernel, _ sigma: Double) {
        var rng = NoiseRandom()
        let noise = SummedGaussianNoise(standardDeviation: sigma, kernel: kernel)
        var values = [Float](repeating: 0, count: 200_003)
        noise.add(to: &values, using: &rng)
        checkNormal(values.map(Double.init), sigma: sigma, "\(kernel), σ = \(sigma)")
        // Neighbouring coordinates share no draw: their products (and their squares') average out.
        let pairs = Double(values.count - 1), s2 = sigma * sigma
        let product = (0..<values.count - 1).reduce(0.0) { $0 + Double(values[$1]) * Double(values[$1 + 1]) } / pairs
        #expect(abs(product) < 5 * s2 / pairs.squareRoot(), "\(kernel): neighbours correlate, E[xy] = \(product)")
        // Adding noise to a vector moves it, and the same call twice never gives the same noise.
        var again = [Float](repeating: 0, count: 200_003)
        noise.add(to: &again, using: &rng)
        #expect(values != again)
    }

    /// The CPU's widest kernel is the one in use: AVX-512 or AVX2 where /proc/cpuinfo's flags say so (and the
    /// portable build on a CPU that lists neither, or no x86 flags at all).
    @Test func theWidestKernelIsChosen() {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
        let expected: NoiseKernel = ["avx512f", "avx512dq", "avx512vl", "avx512bw"].allSatisfy(cpu.contains) ? .avx512
            : ["avx2", "fma"].allSatisfy(cpu.contains) ? .avx2 : .portable
        #expect(NoiseKernel.best == expected)
        #expect(SummedGaussianNoise(standardDeviation: 1).kernel == expected)
    }
}
