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

    /// The smallest noise multiplier (to a relative 10⁻⁴) whose ε for δ is at most `epsilon`.
    public static func calibrate(epsilon target: Double, samplingRate q: Double, steps: Int, delta: Double,
                                 accountant: AccountantKind = .pld) throws(PrivacyError) -> Double {
        try validate(epsilon: target, samplingRate: q, steps: steps, delta: delta)
        func eps(_ sigma: Double) throws(PrivacyError) -> Double {
            try epsilon(noiseMultiplier: sigma, samplingRate: q, steps: steps, delta: delta, accountant: accountant)
        }
        var high = 1.0
        while try eps(high) > target {
            high *= 2
            guard high < 1e6 else { throw PrivacyError("no noise multiplier below 10⁶ reaches ε = \(target)") }
        }
        var low = high / 2
        while low > 1e-3, try eps(low) <= target { low /= 2 }
        // ε falls as σ grows: bisect [low, high] until the bracket is within 10⁻⁴ of σ.
        while (high - low) / high > 1e-4 {
            let mid = (low + high) / 2
            if try eps(mid) <= target { high = mid } else { low = mid }
        }
        return high
    }
}
