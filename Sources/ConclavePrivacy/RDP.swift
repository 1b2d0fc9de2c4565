#if canImport(Glibc)
import Glibc
#endif

/// Rényi differential privacy of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang 2019),
/// at integer and fractional orders, in log space, and its conversion to (ε, δ).
public enum RDP {
    /// The orders Google's dp-accounting uses by default: fine steps near 1, integers up to 63, then powers of 2.
    public static let defaultOrders: [Double] =
        (1..<100).map { 1 + Double($0) / 10 } + (11..<64).map(Double.init) + [128, 256, 512, 1024]

    /// RDP ε(α) of one step: sampling rate q, noise multiplier σ (noise std / sensitivity).
    public static func subsampledGaussian(samplingRate q: Double, noiseMultiplier sigma: Double, order alpha: Double) -> Double {
        precondition(alpha > 1, "RDP orders are above 1")
        if q == 0 { return 0 }
        if sigma == 0 { return .infinity }
        if q == 1 { return alpha / (2 * sigma * sigma) }
        let logA = alpha == alpha.rounded() && alpha < 1e6 ? logAInteger(q, sigma, Int(alpha)) : logAFractional(q, sigma, alpha)
        return logA / (alpha - 1)
    }

    /// log A_α for integer α: Σₖ C(α,k) (1−q)^{α−k} qᵏ exp((k²−k)/(2σ²)), every term positive.
    static func logAInteger(_ q: Double, _ sigma: Double, _ alpha: Int) -> Double {
        var total = -Double.infinity
        for k in 0...alpha {
            let term = LogMath.binomial(Double(alpha), k).log + Double(alpha - k) * log1p(-q) + Double(k) * log(q)
                + Double(k * k - k) / (2 * sigma * sigma)
            total = LogMath.add(total, term)
        }
        return total
    }

    /// log A_α for fractional α (MTZ 2019 §3.3): split the Gaussian integral at z₀ where both mixture
    /// components are equal, expand (1−q + q·e^{(2z−1)/2σ²})^α binomially on each side, and integrate term by
    /// term. C(α,k) alternates in sign for k > α; positive and negative terms are summed apart and subtracted
    /// once, so no intermediate logarithm of a negative number is ever taken.
    static func logAFractional(_ q: Double, _ sigma: Double, _ alpha: Double) -> Double {
        var positive = -Double.infinity, negative = -Double.infinity
        let z0 = sigma * sigma * log(1 / q - 1) + 0.5
        let s2 = 2 * sigma * sigma
        var i = 0
        while i < 100_000 {
            let (logCoef, isNegative) = LogMath.binomial(alpha, i)
            let j = alpha - Double(i)
            let di = Double(i)
            let logT0 = logCoef + di * log(q) + j * log1p(-q)
            let logT1 = logCoef + j * log(q) + di * log1p(-q)
            let logE0 = log(0.5) + LogMath.erfcLog((di - z0) / (sqrt(2) * sigma))
            let logE1 = log(0.5) + LogMath.erfcLog((z0 - j) / (sqrt(2) * sigma))
            let logS0 = logT0 + (di * di - di) / s2 + logE0
            let logS1 = logT1 + (j * j - j) / s2 + logE1
            let term = LogMath.add(logS0, logS1)
            if isNegative { negative = LogMath.add(negative, term) } else { positive = LogMath.add(positive, term) }
            i += 1
            if di > alpha, max(logS0, logS1) < positive - 40 { break }  // A_α ≥ 1: relative 4·10⁻¹⁸
        }
        return LogMath.sub(positive, negative)
    }

    /// The tightest (ε, δ) over the orders (the conversion Google's dp-accounting uses, after Canonne, Kamath
    /// & Steinke 2020 and Asoodeh et al.): ε = min_α [R(α) + log1p(−1/α) − log(δα)/(α−1)].
    public static func epsilon(rdp: [Double], orders: [Double], delta: Double) -> (epsilon: Double, order: Double) {
        precondition(rdp.count == orders.count && !orders.isEmpty)
        var best = (epsilon: Double.infinity, order: orders[0])
        for (alpha, r) in zip(orders, rdp) {
            let eps: Double
            if r == .infinity {
                eps = .infinity
            } else if delta * delta + expm1(-r) > 0 {
                eps = 0  // δ ≥ √(1 − e^{−KL}) already
            } else if alpha > 1.01 {
                eps = r + log1p(-1 / alpha) - log(delta * alpha) / (alpha - 1)
            } else {
                eps = .infinity
            }
            if eps < best.epsilon { best = (eps, alpha) }
        }
        return (max(0, best.epsilon), best.order)
    }
}
