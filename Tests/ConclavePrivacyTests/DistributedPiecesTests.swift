import ConclavePrivacy
import Foundation
import Testing

/// Building blocks of distributed DP (Kairouz, Liu & Steinke 2021).
@Suite struct DistributedPiecesTests {
    @Test func randomizedHadamardIsAnOrthonormalRotationItsInverseUndoes() {
        let values: [Float] = (0..<1000).map { Float(sin(Double($0))) * ($0 == 7 ? 50 : 1) }
        let rotation = RandomizedHadamard(dimension: 1000, seed: [UInt8](repeating: 4, count: 32))
        #expect(rotation.paddedDimension == 1024)
        let rotated = rotation.rotate(values)
        let norm = { (v: [Double]) in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let original = norm(values.map(Double.init))
        #expect(abs(norm(rotated) - original) < 1e-9 * original)
        // The spike at coordinate 7 is spread out: no rotated coordinate keeps much of it.
        #expect(rotated.map(abs).max()! < 0.25 * 50)
        let back = rotation.unrotate(rotated)
        #expect(zip(back, values).allSatisfy { abs($0 - Double($1)) < 1e-9 })
        // Same seed, same rotation (every silo and the coordinator agree); another seed, another one.
        #expect(RandomizedHadamard(dimension: 1000, seed: [UInt8](repeating: 4, count: 32)).rotate(values) == rotated)
        #expect(RandomizedHadamard(dimension: 1000, seed: [UInt8](repeating: 5, count: 32)).rotate(values) != rotated)
    }
}

extension DistributedPiecesTests {
    @Test func theModularSumOfNoisySharesDecodesToTheSumPlusTheirNoise() {
        let d = 300, silos = 20
        let mechanism = DistributedDiscreteGaussian(clipNorm: 1, localStddev: 0.05, silos: silos, dimension: d,
                                                    rotationSeed: [UInt8](repeating: 9, count: 32))
        let rotation = RandomizedHadamard(dimension: d, seed: mechanism.rotationSeed)
        var rng = NoiseRandom()
        var sum = [UInt32](repeating: 0, count: mechanism.paddedDimension)
        var exact = [Double](repeating: 0, count: d)
        for s in 0..<silos {
            // Inputs of norm 1, all pointing the same way half the time: the worst case for the modular range.
            let input: [Float] = (0..<d).map { i in Float(s % 2 == 0 ? 1 / Double(d).squareRoot() : sin(Double(i * (s + 1))) / 12.3) }
            for i in 0..<d { exact[i] += Double(input[i]) }
            let words = mechanism.encode(input, rotation: rotation, using: &rng)
            #expect(words.count == 512)
            for i in sum.indices { sum[i] = sum[i] &+ words[i] }
        }
        let decoded = mechanism.decode(sum: sum, rotation: rotation)
        let errors = zip(decoded, exact).map { $0 - $1 }
        let std = (errors.reduce(0) { $0 + $1 * $1 } / Double(d)).squareRoot()
        // 20 shares of std 0.05: the sum's noise is 0.05·√20 ≈ 0.224 (rounding adds ~10⁻⁸); χ² with 300 degrees
        // of freedom, 5 standard errors.
        let expected = 0.05 * Double(silos).squareRoot()
        #expect(abs(std - expected) < 5 * expected / Double(2 * d).squareRoot(), "noise std \(std), expected \(expected)")
        #expect(abs(errors.reduce(0, +) / Double(d)) < 5 * expected / Double(d).squareRoot())
    }

    @Test func theAccountantChargesTheSharesThatSurvived() {
        let mechanism = DistributedDiscreteGaussian(clipNorm: 2, localStddev: 2 * 1.5 / 10.0.squareRoot(), silos: 12,
                                                    dimension: 5000, rotationSeed: [UInt8](repeating: 1, count: 32))
        // On its fine grid, τ vanishes and the bound is the continuous Gaussian's α/(2σ²) at σ = √s·share/c.
        for alpha in [2.0, 8, 32] {
            let sigma = 1.5  // 10 shares of 2·1.5/√10 over a clip of 2
            let continuous = alpha / (2 * sigma * sigma)
            #expect(abs(mechanism.rdp(order: alpha, shares: 10) / continuous - 1) < 1e-6)
        }
        let planned = DistributedDiscreteGaussian.epsilon(rounds: Array(repeating: (mechanism, 10), count: 20), delta: 1e-5)
        let lost = DistributedDiscreteGaussian.epsilon(rounds: Array(repeating: (mechanism, 10), count: 19) + [(mechanism, 6)],
                                                       delta: 1e-5)
        let more = DistributedDiscreteGaussian.epsilon(rounds: Array(repeating: (mechanism, 12), count: 20), delta: 1e-5)
        #expect(lost > planned && planned > more)
        // The RDP accountant's ε for the same Gaussian: the distributed mechanism costs what central noise costs.
        let rdp = try! Accountant.epsilon(noiseMultiplier: 1.5, samplingRate: 1, steps: 20, delta: 1e-5, accountant: .rdp)
        #expect(abs(planned - rdp) / rdp < 1e-6, "distributed \(planned) vs Gaussian RDP \(rdp)")
        // A coarse grid (few grid steps per noise std) pays τ on top.
        let coarse = DistributedDiscreteGaussian(clipNorm: 2, granularity: 1.2, localStddev: 0.3, beta: 0.6,
                                                 rotationSeed: [UInt8](repeating: 1, count: 32), dimension: 5000)!
        #expect(coarse.rdp(order: 2, shares: 10) > 2 / (2 * pow(0.3 * 10.0.squareRoot() / coarse.roundedBound / 1.2, 2)))
    }
}
