import ConclaveCrypto
@testable import ConclaveSecAgg
import Foundation
import Testing

@Suite struct GraphTests {
    @Test func completeGraphThresholds() throws {
        // Active coordinator: t > (n + γn)/2; curious: t > γn; never more than the (1 − δ)n survivors.
        #expect(try GraphParameters.choose(silos: 10, dropoutRate: 0.3, adversary: .active)
                == .init(degree: 9, threshold: 6, complete: true))
        #expect(try GraphParameters.choose(silos: 10, dropoutRate: 0.3, corruptionRate: 0.2, adversary: .curious)
                == .init(degree: 9, threshold: 3, complete: true))
        #expect(throws: SecAggError.self) { try GraphParameters.choose(silos: 10, dropoutRate: 0.5, adversary: .active) }
        #expect(throws: SecAggError.self) { try GraphParameters.choose(silos: 10, dropoutRate: 0.5, corruptionRate: 0.45, adversary: .curious) }
    }

    @Test func hypergeometricIsADistribution() {
        let h = Hypergeometric(population: 50, successes: 20, draws: 10)
        let total = (0...10).reduce(0.0) { $0 + exp(h.logPMF($1)) }
        #expect(abs(total - 1) < 1e-12)
        let mean = (0...10).reduce(0.0) { $0 + Double($1) * exp(h.logPMF($1)) }
        #expect(abs(mean - 4) < 1e-9)  // draws · successes / population
    }

    /// The chosen Harary parameters meet the bounds they were chosen for, and the degree grows slowly with n.
    @Test(arguments: [(1000, 0.1, 0.05), (10_000, 0.05, 0.0), (5000, 0.2, 0.1)])
    func hararyParametersMeetTheirBounds(n: Int, dropout: Double, corruption: Double) throws {
        for adversary in GraphParameters.Adversary.allCases {
            let c = try GraphParameters.choose(silos: n, dropoutRate: dropout, corruptionRate: corruption, adversary: adversary)
            #expect(!c.complete)
            #expect(c.degree % 2 == 0 && c.degree < n / 4)
            let colluders = Hypergeometric(population: n, successes: Int(corruption * Double(n)), draws: c.degree)
            let survivors = Hypergeometric(population: n, successes: Int((1 - dropout) * Double(n)), draws: c.degree)
            let pTooManyColluders = (c.threshold...c.degree).reduce(0.0) { $0 + exp(colluders.logPMF($1)) }
            let pTooFewSurvivors = (0..<c.threshold).reduce(0.0) { $0 + exp(survivors.logPMF($1)) }
            #expect(pTooManyColluders <= pow(2, -41) / Double(n))
            #expect(pTooFewSurvivors <= pow(2, -20) / Double(n))
        }
        let small = try GraphParameters.choose(silos: 1000, dropoutRate: 0.1, corruptionRate: 0.05)
        let large = try GraphParameters.choose(silos: 100_000, dropoutRate: 0.1, corruptionRate: 0.05)
        #expect(large.degree >= small.degree && large.degree < 2 * small.degree)
    }

    @Test func hararyGraphIsRegularSymmetricAndSeeded() throws {
        let members = (0..<40).map { "s\($0)" }
        let g = try NeighbourGraph.harary(members, degree: 6, seed: [1])
        for m in members {
            #expect(g.neighbours(of: m).count == 6)
            #expect(!g.neighbours(of: m).contains(m))
            for n in g.neighbours(of: m) { #expect(g.neighbours(of: n).contains(m)) }
        }
        // Connected: a walk from any member reaches all.
        var seen: Set<String> = ["s0"], frontier = ["s0"]
        while let next = frontier.popLast() {
            for n in g.neighbours(of: next) where !seen.contains(n) { seen.insert(n); frontier.append(n) }
        }
        #expect(seen.count == 40)
        #expect(try NeighbourGraph.harary(members, degree: 6, seed: [1]) == g)
        #expect(try NeighbourGraph.harary(members, degree: 6, seed: [2]) != g)
        #expect(throws: CryptoError.self) { try NeighbourGraph.harary(members, degree: 5, seed: [1]) }
        #expect(NeighbourGraph.complete(members).isComplete)
    }
}
