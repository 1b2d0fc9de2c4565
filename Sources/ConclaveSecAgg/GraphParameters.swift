#if canImport(Glibc)
import Glibc
#endif

/// Chooses the neighbour graph and the Shamir threshold for n silos from the tolerated dropout rate δ and
/// corruption rate γ (fraction of silos that may collude with the coordinator), following the analysis of
/// Bell et al. (CCS 2020, §4) with statistical security 2⁻⁴⁰ and failure probability 2⁻²⁰:
///
/// - complete graph (n ≤ `completeUpTo`): t must exceed the colluders, ⌊γn⌋ (honest-but-curious coordinator)
///   or (n + γn)/2 (a coordinator that lies about dropouts), and at most (1 − δ)n silos may be needed;
/// - Harary graph otherwise: the smallest even degree k for which (a) removing the colluding and dropped
///   silos leaves the graph connected except with probability < 2⁻⁴¹ (union bound over pairs of gaps of k/2
///   consecutive removed silos), and (b) some t separates the colluding neighbours of a silo (hypergeometric,
///   exceeded with probability < 2⁻⁴¹/n) from its surviving neighbours (hypergeometric, fallen short of with
///   probability < 2⁻²⁰/n). t is then the smallest safe value.
public enum GraphParameters {
    public enum Adversary: String, Sendable, CaseIterable, Codable {
        /// The coordinator follows the protocol but reads everything it sees.
        case curious
        /// The coordinator may also lie about which silos dropped (signed survivor lists stop it).
        case active
    }

    public struct Choice: Sendable, Equatable {
        /// Neighbours per silo, itself excluded (n − 1 for the complete graph).
        public let degree: Int
        /// Shamir threshold among a silo's neighbourhood (degree + 1 parties).
        public let threshold: Int
        public let complete: Bool
    }

    public static func choose(silos n: Int, dropoutRate δ: Double, corruptionRate γ: Double = 0,
                              adversary: Adversary = .active, completeUpTo: Int = 100) throws(SecAggError) -> Choice {
        guard n >= 2 else { throw SecAggError("secure aggregation needs at least 2 silos, got \(n)") }
        guard (0..<1).contains(δ), (0..<1).contains(γ) else { throw SecAggError("dropout and corruption rates must be in [0, 1)") }
        let budget = adversary == .active ? γ + 2 * δ : γ + δ
        guard budget <= 0.9 else {
            throw SecAggError("infeasible: \(adversary == .active ? "γ + 2δ" : "γ + δ") = \(budget) must be at most 0.9")
        }
        if n <= completeUpTo {
            let colluders = Int((γ * Double(n)).rounded(.up))
            let floor = adversary == .active ? Int(((Double(n) + γ * Double(n)) / 2).rounded(.down)) + 1 : colluders + 1
            let ceiling = Int(((1 - δ) * Double(n) + 1e-9).rounded(.down))
            let t = max(2, floor)
            guard t <= ceiling else {
                throw SecAggError("no threshold fits \(n) silos: it must exceed \(floor - 1) yet \(ceiling) may be all that survive")
            }
            return Choice(degree: n - 1, threshold: t, complete: true)
        }
        var k = 2
        while k < n - 1 {
            if let t = harary(n: n, k: k, δ: δ, γ: γ, adversary: adversary) { return Choice(degree: k, threshold: t, complete: false) }
            k += 2
        }
        throw SecAggError("no Harary graph over \(n) silos meets δ = \(δ), γ = \(γ); use fewer silos or lower rates")
    }

    static let securityBits = 40.0, correctnessBits = 20.0

    static func harary(n: Int, k: Int, δ: Double, γ: Double, adversary: Adversary) -> Int? {
        let perEvent = securityBits + 1
        let bad = Int(((γ + 1e-14) * Double(n)).rounded(.down))
        let dropped = Int(((δ + 1e-14) * Double(n)).rounded(.down))
        // (a) Connectivity of the honest survivors.
        let removed = bad + dropped
        if k <= removed {
            let logPairs = log(Double(n)) + log(Double(n - k - 1)) - log(2)
            let logDisconnect = logPairs + lgamma(Double(removed + 1)) + lgamma(Double(n - k + 1))
                - lgamma(Double(n + 1)) - lgamma(Double(removed - k + 1))
            if logDisconnect >= -perEvent * log(2) { return nil }
        }
        // (b) A threshold between the colluding and the surviving neighbours.
        let surviving = Int(((1 - δ - 1e-14) * Double(n)).rounded(.up))
        let colluding = Hypergeometric(population: n, successes: bad, draws: k)
        let survivors = Hypergeometric(population: n, successes: surviving, draws: k)
        var t1 = colluding.upperQuantile(pow(2, -perEvent) / Double(n))
        let t2 = survivors.lowerQuantile(pow(2, -correctnessBits) / Double(n))
        if adversary == .active { t1 = Int(((Double(t1 + k) - 1.25) / 2).rounded(.up)) }
        guard t2 > t1 else { return nil }
        return max(t1 + 1, 2)
    }
}

/// The number of successes in `draws` draws without replacement from a population holding `successes`.
struct Hypergeometric {
    let population: Int, successes: Int, draws: Int

    func logPMF(_ x: Int) -> Double {
        guard x >= max(0, draws - (population - successes)), x <= min(draws, successes) else { return -.infinity }
        return logChoose(successes, x) + logChoose(population - successes, draws - x) - logChoose(population, draws)
    }

    func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// The smallest x with P(X > x) ≤ p.
    func upperQuantile(_ p: Double) -> Int {
        var tail = 0.0
        var x = min(draws, successes)
        while x >= 0 {
            let next = tail + exp(logPMF(x))  // P(X ≥ x)
            if next > p { return x }
            tail = next
            x -= 1
        }
        return -1
    }

    /// The largest x with P(X < x) ≤ p.
    func lowerQuantile(_ p: Double) -> Int {
        var below = 0.0
        var x = 0
        while x <= draws {
            let next = below + exp(logPMF(x))  // P(X ≤ x)
            if next > p { return x }
            below = next
            x += 1
        }
        return draws
    }
}
