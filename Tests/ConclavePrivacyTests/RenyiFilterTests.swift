@testable import ConclavePrivacy
import Foundation
import Testing

/// The cross-run budget filter: adaptively chosen releases are charged until the cap; an independent
/// computation (the Gaussian mechanism's closed-form RDP, α/(2σ²) per release, and the RDP → (ε, δ)
/// conversion written out here) confirms that what the filter admitted stays within (ε_cap, δ_cap) at the
/// pinned order and that the release it refused would have broken that certificate.
@Suite struct RenyiFilterTests {
    /// ε at δ from an RDP value ρ at order α (Canonne, Kamath & Steinke 2020), written out independently.
    static func epsilon(rho: Double, alpha: Double, delta: Double) -> Double {
        rho + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1)
    }

    @Test func adaptiveReleasesStopAtTheCapAndTheCertificateHolds() throws {
        for (cap, delta, seed) in [(3.0, 1e-5, 1 as UInt64), (1.0, 1e-6, 2), (8.0, 1e-5, 3), (0.5, 1e-5, 4)] {
            var filter = try RenyiFilter(epsilonCap: cap, deltaCap: delta)
            var rng = SplitMix64(seed: seed)  // seeded: the same adaptive history on every run
            var admitted = [Double]()  // σ of each admitted release
            var refused: Double?
            var sigma = 20.0
            for _ in 0..<10_000 {
                // Adaptive: the analyst lowers the noise while the budget looks ample, raises it when it does not.
                sigma = filter.remaining > filter.bound / 2 ? max(0.5, sigma * Double.random(in: 0.85...1.0, using: &rng))
                                                            : min(30, sigma * Double.random(in: 1.0...1.3, using: &rng))
                let s = sigma
                if case .charged = filter.charge(filter.increment { $0 / (2 * s * s) }) { admitted.append(sigma) } else { refused = sigma; break }
            }
            #expect(admitted.count >= 3, "the history should hold several releases")
            let exact = admitted.reduce(0) { $0 + filter.order / (2 * $1 * $1) }
            #expect(exact <= filter.spent, "stored charges are never below the true cost")
            #expect(Self.epsilon(rho: exact, alpha: filter.order, delta: delta) <= cap + 1e-12, "ε_cap \(cap): the admitted history is within the cap")
            let last = try #require(refused, "the budget must run out")
            let withIt = exact + filter.order / (2 * last * last)
            #expect(Self.epsilon(rho: withIt, alpha: filter.order, delta: delta) > cap - 1e-6, "the refused release would have broken the certificate")
            #expect(filter.epsilonSpent <= cap + 1e-12 && filter.epsilonSpent > 0)
            #expect(filter.epsilonSpent <= Self.epsilon(rho: filter.spent, alpha: filter.order, delta: delta) + 1e-9)
        }
    }

    @Test func aRefusedReleaseChangesNothingAndBadInputIsRefused() throws {
        var filter = try RenyiFilter(epsilonCap: 1, deltaCap: 1e-5, order: 16)
        #expect(filter.order == 16)
        let before = filter
        let tooMuch = filter.bound + 1
        guard case .refused(let reason) = filter.charge(filter.increment { _ in tooMuch }) else { Issue.record("an over-budget release was charged"); return }
        #expect(reason.contains("remains"))
        #expect(filter == before)
        #expect(filter.charge(filter.increment { _ in .nan }) != .charged(spentAfter: 0) && filter == before)
        #expect(filter.charge(RenyiFilter.Increment(atOrder: -1, byOrder: [])) != .charged(spentAfter: -1) && filter == before)
        #expect(throws: PrivacyError.self) { try RenyiFilter(epsilonCap: 0, deltaCap: 1e-5) }
        #expect(throws: PrivacyError.self) { try RenyiFilter(epsilonCap: 1, deltaCap: 1) }
        #expect(throws: PrivacyError.self) { try RenyiFilter(epsilonCap: 1, deltaCap: 1e-5, order: 1) }
        // A cap too small for the order leaves no RDP at all.
        #expect(throws: PrivacyError.self) { try RenyiFilter(epsilonCap: 0.01, deltaCap: 1e-10, order: 2) }
    }

    /// The increments a DP-SGD history stores are the accountant's (rounded up by at most 10⁻⁹), and the
    /// filter's ε spent at its order is never below the accountant's best-order ε for the same history.
    @Test func chargesEqualTheAccountants() throws {
        var filter = try RenyiFilter(epsilonCap: 8, deltaCap: 1e-5)
        let (q, sigma, steps) = (256.0 / 60_000, 1.1, 235)
        let curve = { (alpha: Double) in Double(steps) * RDP.subsampledGaussian(samplingRate: q, noiseMultiplier: sigma, order: alpha) }
        let increment = filter.increment(curve)
        #expect(increment.atOrder >= curve(filter.order) && increment.atOrder - curve(filter.order) <= 1e-9)
        for (i, alpha) in RenyiFilter.displayOrders.enumerated() {
            #expect(increment.byOrder[i] >= curve(alpha) && increment.byOrder[i] - curve(alpha) <= 1e-9 * max(1, curve(alpha)))
        }
        guard case .charged = filter.charge(increment) else { Issue.record("one epoch should fit ε = 8"); return }
        let accountant = try Accountant.epsilon(noiseMultiplier: sigma, samplingRate: q, steps: steps, delta: 1e-5, accountant: .rdp)
        // The accounting value is the accountant's over a coarser grid of orders: never below, and close.
        #expect(filter.epsilonSpent >= accountant - 1e-9, "fewer orders cannot beat the accountant")
        #expect(filter.epsilonSpent <= accountant * 1.1, "\(filter.epsilonSpent) vs \(accountant)")
    }
}

/// SplitMix64: a small seeded generator, so the adaptive histories are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
