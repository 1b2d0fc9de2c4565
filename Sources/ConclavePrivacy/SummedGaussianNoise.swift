/// Continuous Gaussian noise fast enough for DP-SGD's every step (10⁵ coordinates), hardened against
/// floating-point attacks by the construction of Holohan & Braghin ("Secure Random Sampling in Differential
/// Privacy", ESORICS 2021), the one Opacus uses in its secure mode: each coordinate is the sum of `parts`
/// independent N(0, σ²/parts) draws. Mironov's attack (CCS 2012) inverts a single textbook draw to the uniform
/// behind it; a sum has exponentially many preimages, so the released low-order bits no longer pin down the
/// input. Draws are ziggurat variates (double precision) from `NoiseRandom` (AES-CTR under a key from
/// libsodium); values get their noise in double precision and are rounded to Float once. The exact integer
/// samplers in `DiscreteSamplers` remain the choice where a release happens once per round (`GaussianNoise`): at
/// ≈ 2.75 µs a draw they would cost DP-SGD ~0.3 s per step of a 10⁵-parameter model.
public struct SummedGaussianNoise: Sendable {
    public let standardDeviation: Double
    public let parts: Int

    public init(standardDeviation: Double, parts: Int = 2) {
        precondition(standardDeviation > 0 && standardDeviation.isFinite, "noise needs a positive, finite standard deviation")
        precondition(parts >= 2, "the construction needs at least two summed draws")
        self.standardDeviation = standardDeviation
        self.parts = parts
    }

    /// Adds independent noise to every value.
    public func add(to values: inout [Float], using rng: inout NoiseRandom) {
        let scale = standardDeviation / Double(parts).squareRoot()
        let (xs, fs) = Ziggurat.tables
        xs.withUnsafeBufferPointer { x in
            fs.withUnsafeBufferPointer { f in
                values.withUnsafeMutableBufferPointer { out in
                    for i in out.indices {
                        var total = 0.0
                        for _ in 0..<parts { total += Ziggurat.normal(using: &rng, x: x.baseAddress!, f: f.baseAddress!) }
                        out[i] = Float(Double(out[i]) + total * scale)
                    }
                }
            }
        }
    }
}
