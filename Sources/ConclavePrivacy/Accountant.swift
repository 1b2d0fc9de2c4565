#if canImport(Glibc)
import Glibc
#endif

/// Which accountant turns a mechanism's parameters into (ε, δ).
public enum AccountantKind: String, Sendable, CaseIterable, Codable {
    /// Rényi DP over dp-accounting's default orders, then the tight RDP → (ε, δ) conversion.
    case rdp
    /// Privacy loss distributions (tighter); see `PLD`.
    case pld
}

public struct PrivacyError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// ε for δ, and the noise for a target ε, of T steps of the Poisson-subsampled Gaussian mechanism (DP-SGD,
/// DP-FedAvg): sampling rate q, noise multiplier σ = noise standard deviation / sensitivity.
public enum Accountant {
    public static func validate(noiseMultiplier: Double? = nil, epsilon: Double? = nil, samplingRate q: Double,
                                steps: Int, delta: Double) throws(PrivacyError) {
        if let sigma = noiseMultiplier, !(sigma >= 0 && sigma.isFinite) {
            throw PrivacyError("noise multiplier must be a finite number ≥ 0, got \(sigma)")
        }
        if let eps = epsilon, !(eps > 0 && eps.isFinite) { throw PrivacyError("epsilon must be positive, got \(eps)") }
        guard q > 0, q <= 1 else { throw PrivacyError("sampling rate must be in (0, 1], got \(q)") }
        guard steps >= 1 else { throw PrivacyError("steps must be at least 1, got \(steps)") }
        guard delta > 0, delta < 1 else { throw PrivacyError("delta must be in (0, 1), got \(delta)") }
    }

    public static func epsilon(noiseMultiplier sigma: Double, samplingRate q: Double, steps: Int, delta: Double,
                               accountant: AccountantKind = .pld) throws(PrivacyError) -> Double {
        try validate(noiseMultiplier: sigma, samplingRate: q, steps: steps, delta: delta)
        switch accountant {
        case .rdp:
            let orders = RDP.defaultOrders
            let rdp = orders.map { Double(steps) * RDP.subsampledGaussian(samplingRate: q, noiseMultiplier: sigma, order: $0) }
            return RDP.epsilon(rdp: rdp, orders: orders, delta: delta).epsilon
        case .pld:
            return try PLD.epsilon(noiseMultiplier: sigma, samplingRate: q, steps: steps, delta: delta)
        }
    }

    /// The smallest noise multiplier (to a relative 10⁻⁴) whose ε for δ is at most `epsilon`. ε falls as σ
    /// grows; the root of log ε(σ) = log target is bracketed (with the cheap RDP answer, an upper bound for PLD)
    /// and found by the Illinois variant of regula falsi in log σ — a handful of accountant calls, not fifty.
    public static func calibrate(epsilon target: Double, samplingRate q: Double, steps: Int, delta: Double,
                                 accountant: AccountantKind = .pld) throws(PrivacyError) -> Double {
        try calibrated(epsilon: target, samplingRate: q, steps: steps, delta: delta, accountant: accountant).noiseMultiplier
    }

    /// `calibrate`, with the ε the returned noise multiplier actually spends.
    public static func calibrated(epsilon target: Double, samplingRate q: Double, steps: Int, delta: Double,
                                  accountant: AccountantKind = .pld) throws(PrivacyError)
        -> (noiseMultiplier: Double, epsilon: Double) {
        try validate(epsilon: target, samplingRate: q, steps: steps, delta: delta)
        func f(_ sigma: Double) throws(PrivacyError) -> Double {
            let e = try epsilon(noiseMultiplier: sigma, samplingRate: q, steps: steps, delta: delta, accountant: accountant)
            return log(max(e, 1e-300)) - log(target)
        }
        var high = accountant == .pld
            ? try calibrated(epsilon: target, samplingRate: q, steps: steps, delta: delta, accountant: .rdp).noiseMultiplier
            : 1.0
        var fHigh = try f(high)
        while fHigh > 0 {
            high *= 2
            guard high < 1e6 else { throw PrivacyError("no noise multiplier below 10⁶ reaches ε = \(target)") }
            fHigh = try f(high)
        }
        // PLD's σ is typically 5–15 % below RDP's.
        var low = high * 0.85
        var fLow = try f(low)
        while fLow <= 0 {
            guard low > 1e-4 else { return (low, target * exp(fLow)) }
            (high, fHigh) = (low, fLow)
            low *= 0.5
            fLow = try f(low)
        }
        var (uLow, uHigh) = (log(low), log(high))
        var lastMoved = 0
        for _ in 0..<60 where (exp(uHigh) - exp(uLow)) / exp(uHigh) > 1e-4 {
            var u = (uLow * fHigh - uHigh * fLow) / (fHigh - fLow)
            if !(u > uLow && u < uHigh) { u = (uLow + uHigh) / 2 }
            let fu = try f(exp(u))
            if fu <= 0 {
                (uHigh, fHigh) = (u, fu)
                if lastMoved == 1 { fLow /= 2 }
                lastMoved = 1
            } else {
                (uLow, fLow) = (u, fu)
                if lastMoved == -1 { fHigh /= 2 }
                lastMoved = -1
            }
        }
        return (exp(uHigh), target * exp(fHigh))
    }
}
