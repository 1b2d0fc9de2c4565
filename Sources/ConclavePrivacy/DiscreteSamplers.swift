/// Exact samplers over the integers (Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential
/// Privacy", NeurIPS 2020). Every decision is an integer comparison against uniformly random integers, so no
/// floating-point rounding can leak through the noise (Mironov, CCS 2012). Parameters are exact rationals;
/// the randomness comes from the caller's generator — in production `ChaChaDRBG`, seeded from libsodium.
public enum DiscreteSamplers {
    /// A non-negative rational n/d, d > 0, in 128-bit integers (products of realistic parameters stay far
    /// below 2¹²⁷).
    public struct Rational: Sendable, Equatable {
        public let numerator: Int128
        public let denominator: Int128

        public init(_ numerator: Int128, _ denominator: Int128 = 1) {
            precondition(denominator > 0 && numerator >= 0, "a non-negative rational with a positive denominator")
            self.numerator = numerator
            self.denominator = denominator
        }

        /// The rational nearest `value` with the given denominator (10⁶ by default).
        public init(approximating value: Double, denominator: Int128 = 1_000_000) {
            precondition(value >= 0 && value.isFinite)
            self.init(Int128((value * Double(denominator)).rounded()), denominator)
        }

        var floor: Int128 { numerator / denominator }
    }

    /// Uniform in 0..<bound, unbiased (rejection sampling).
    static func uniform(_ bound: Int128, using rng: inout some RandomNumberGenerator) -> Int128 {
        precondition(bound > 0)
        if bound <= Int128(UInt64.max) { return Int128(UInt64.random(in: 0...UInt64(bound - 1), using: &rng)) }
        let b = UInt128(bound)
        let limit = UInt128.max - UInt128.max % b
        while true {
            let x = UInt128(rng.next()) << 64 | UInt128(rng.next())
            if x < limit { return Int128(x % b) }
        }
    }

    /// Bernoulli(n/d).
    public static func bernoulli(_ p: Rational, using rng: inout some RandomNumberGenerator) -> Bool {
        uniform(p.denominator, using: &rng) < p.numerator
    }

    /// Bernoulli(exp(−γ)) for rational γ ≥ 0 (CKS Algorithm 1).
    public static func bernoulliExpMinus(_ gamma: Rational, using rng: inout some RandomNumberGenerator) -> Bool {
        var g = gamma
        // exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)).
        while g.numerator > g.denominator {
            guard bernoulliExpMinusAtMostOne(Rational(1), using: &rng) else { return false }
            g = Rational(g.numerator - g.denominator, g.denominator)
        }
        return bernoulliExpMinusAtMostOne(g, using: &rng)
    }

    /// Bernoulli(exp(−γ)) for γ ∈ [0, 1]: the parity of the first K with Bernoulli(γ/K) = 0.
    static func bernoulliExpMinusAtMostOne(_ gamma: Rational, using rng: inout some RandomNumberGenerator) -> Bool {
        var k: Int128 = 1
        while bernoulli(Rational(gamma.numerator, gamma.denominator * k), using: &rng) { k += 1 }
        return k % 2 == 1
    }

    /// The discrete Laplace distribution with scale b = t/s: P(x) ∝ exp(−|x|/b) (CKS Algorithm 2, whose
    /// parameters are the scale's numerator t and denominator s).
    public static func discreteLaplace(scale: Rational, using rng: inout some RandomNumberGenerator) -> Int128 {
        let t = scale.numerator, s = scale.denominator
        precondition(t > 0, "the scale must be positive")
        while true {
            let u = uniform(t, using: &rng)
            guard bernoulliExpMinus(Rational(u, t), using: &rng) else { continue }
            var v: Int128 = 0
            while bernoulliExpMinus(Rational(1), using: &rng) { v += 1 }
            let magnitude = (u + t * v) / s
            let negative = bernoulli(Rational(1, 2), using: &rng)
            if negative && magnitude == 0 { continue }
            return negative ? -magnitude : magnitude
        }
    }

    /// The discrete Gaussian N_ℤ(0, σ²): P(x) ∝ exp(−x²/(2σ²)) over the integers, σ² rational (CKS Algorithm 3).
    public static func discreteGaussian(variance sigma2: Rational, using rng: inout some RandomNumberGenerator) -> Int128 {
        precondition(sigma2.numerator > 0, "the variance must be positive")
        // t = ⌊σ⌋ + 1, from the integer square root of ⌊σ²⌋.
        var root = Int128(Double(sigma2.floor).squareRoot())
        while root * root > sigma2.floor { root -= 1 }
        while (root + 1) * (root + 1) <= sigma2.floor { root += 1 }
        let t = root + 1
        while true {
            let y = discreteLaplace(scale: Rational(t), using: &rng)
            let magnitude = y < 0 ? -y : y
            // Accept with probability exp(−(|y| − σ²/t)²/(2σ²)); with σ² = n/d:
            // (|y|·t·d − n)² / (2·n·t²·d).
            let diff = magnitude * t * sigma2.denominator - sigma2.numerator
            let gamma = Rational(diff * diff, 2 * sigma2.numerator * t * t * sigma2.denominator)
            if bernoulliExpMinus(gamma, using: &rng) { return y }
        }
    }
}
