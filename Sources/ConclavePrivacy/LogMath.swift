#if canImport(Glibc)
import Glibc
#endif

/// Arithmetic on logarithms, so sums of terms like e^{1000} or e^{−1000} stay finite and exact enough.
enum LogMath {
    /// log(eˣ + eʸ).
    static func add(_ x: Double, _ y: Double) -> Double {
        if x == -.infinity { return y }
        if y == -.infinity { return x }
        let (a, b) = x > y ? (x, y) : (y, x)
        return a + log1p(exp(b - a))
    }

    /// log(eˣ − eʸ) for x ≥ y (−∞ when equal).
    static func sub(_ x: Double, _ y: Double) -> Double {
        if y == -.infinity { return x }
        if x <= y { return -.infinity }
        return x + log1p(-exp(y - x))
    }

    /// log erfc(x), accurate where erfc underflows (x ≳ 26): the asymptotic series takes over at 20.
    static func erfcLog(_ x: Double) -> Double {
        if x < 20 { return log(erfc(x)) }
        // erfc(x) = e^{−x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + 105/(16x⁸) − …)
        let inv = 1 / (x * x)
        let series = 1 - inv / 2 + 3 * inv * inv / 4 - 15 * inv * inv * inv / 8 + 105 * inv * inv * inv * inv / 16
        return -x * x - log(x) - 0.5 * log(Double.pi) + log(series)
    }

    /// log |C(α, k)| for real α > 0 and integer k ≥ 0, and the sign of C(α, k).
    static func binomial(_ alpha: Double, _ k: Int) -> (log: Double, negative: Bool) {
        let kd = Double(k)
        let logValue = lgamma(alpha + 1) - lgamma(kd + 1) - lgamma(alpha - kd + 1)
        // C(α, k) = α(α−1)…(α−k+1)/k!: one negative factor per j < k with j > α.
        let negatives = alpha == alpha.rounded() ? 0 : max(0, k - Int(alpha.rounded(.up)))
        return (logValue, negatives % 2 == 1)
    }
}
