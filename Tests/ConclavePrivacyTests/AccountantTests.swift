import ConclavePrivacy
import Foundation
import Testing

/// The accountants against oracle vectors (Fixtures/accountant.json, made by Fixtures/make_fixtures.py from
/// Google's dp-accounting and an mpmath integration of the Rényi divergence).
@Suite struct AccountantTests {
    struct Fixtures: Decodable {
        struct Order: Decodable { let q: Double, sigma: Double, order: Double, rdp: Double }
        struct Case: Decodable {
            let q: Double, sigma: Double, steps: Int, delta: Double
            let rdp_epsilon: Double
            let pld_epsilon: Double?
        }
        let rdp_orders: [Order]
        let epsilon: [Case]
    }

    static let fixtures: Fixtures = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/accountant.json")
        return try! JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: url))
    }()

    @Test func rdpMatchesHighPrecisionIntegrationAtIntegerAndFractionalOrders() {
        #expect(Self.fixtures.rdp_orders.count >= 50)
        for o in Self.fixtures.rdp_orders {
            let ours = RDP.subsampledGaussian(samplingRate: o.q, noiseMultiplier: o.sigma, order: o.order)
            #expect(abs(ours - o.rdp) <= 1e-3 * o.rdp, "q \(o.q) σ \(o.sigma) α \(o.order): \(ours) vs \(o.rdp)")
        }
    }

    @Test func rdpEpsilonMatchesTheOracle() throws {
        for c in Self.fixtures.epsilon {
            let ours = try Accountant.epsilon(noiseMultiplier: c.sigma, samplingRate: c.q, steps: c.steps, delta: c.delta,
                                              accountant: .rdp)
            #expect(abs(ours - c.rdp_epsilon) <= 1e-3 * c.rdp_epsilon, "\(c): \(ours)")
        }
    }

    @Test func pldEpsilonMatchesTheOracle() throws {
        let cases = Self.fixtures.epsilon.filter { $0.pld_epsilon != nil }
        #expect(cases.count >= 40)  // q ∈ {0.001, 0.01, 0.1, 1}, σ ∈ {0.6, 1, 1.5, 4}, T ∈ {1, 100, 1000}
        for c in cases {
            let expected = c.pld_epsilon!
            let ours = try Accountant.epsilon(noiseMultiplier: c.sigma, samplingRate: c.q, steps: c.steps, delta: c.delta,
                                              accountant: .pld)
            #expect(abs(ours - expected) <= max(0.01, 0.01 * expected), "\(c): \(ours)")
        }
    }

    @Test(arguments: [AccountantKind.rdp, .pld]) func calibrationInvertsEpsilon(_ kind: AccountantKind) throws {
        for (target, q, steps) in [(1.0, 0.01, 1000), (3.0, 0.05, 500), (8.0, 1.0, 10)] {
            let sigma = try Accountant.calibrate(epsilon: target, samplingRate: q, steps: steps, delta: 1e-5, accountant: kind)
            let at = try Accountant.epsilon(noiseMultiplier: sigma, samplingRate: q, steps: steps, delta: 1e-5, accountant: kind)
            let below = try Accountant.epsilon(noiseMultiplier: sigma * 0.999, samplingRate: q, steps: steps, delta: 1e-5,
                                               accountant: kind)
            #expect(at <= target, "σ \(sigma) gives ε \(at) > \(target)")
            #expect(below > target * 0.99, "σ \(sigma) is not the smallest: 0.999σ gives \(below)")
        }
    }

    @Test func pldIsNeverLooserThanRDP() throws {
        for c in Self.fixtures.epsilon where c.steps <= 1000 {
            let pld = try Accountant.epsilon(noiseMultiplier: c.sigma, samplingRate: c.q, steps: c.steps, delta: c.delta)
            #expect(pld <= c.rdp_epsilon * 1.001 + 0.01, "\(c)")
        }
    }

    @Test func invalidArgumentsAreRefused() {
        #expect(throws: PrivacyError("sampling rate must be in (0, 1], got 1.5")) {
            try Accountant.epsilon(noiseMultiplier: 1, samplingRate: 1.5, steps: 10, delta: 1e-5)
        }
        #expect(throws: PrivacyError("noise multiplier must be a finite number ≥ 0, got -1.0")) {
            try Accountant.epsilon(noiseMultiplier: -1, samplingRate: 0.1, steps: 10, delta: 1e-5)
        }
        #expect(throws: PrivacyError("delta must be in (0, 1), got 1.0")) {
            try Accountant.epsilon(noiseMultiplier: 1, samplingRate: 0.1, steps: 10, delta: 1)
        }
        #expect(throws: PrivacyError("steps must be at least 1, got 0")) {
            try Accountant.calibrate(epsilon: 1, samplingRate: 0.1, steps: 0, delta: 1e-5)
        }
    }
}

extension AccountantTests {
    /// q = 1 with little noise (ε ≈ 19): the PLD equals the Gaussian mechanism's exact curve (Balle & Wang 2018;
    /// value from scipy's brentq on δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2), μ = 1/σ). It once overflowed.
    @Test func pldOfASingleNoisyReleaseWithLittleNoise() throws {
        let eps = try Accountant.epsilon(noiseMultiplier: 0.3, samplingRate: 1, steps: 1, delta: 1e-5)
        #expect(abs(eps - 19.13076783436195) < 0.01 * 19.13)
    }
}
