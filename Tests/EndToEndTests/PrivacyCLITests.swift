import ConclaveTesting
import Foundation
import Testing

/// `conclave privacy epsilon|calibrate`: the interface planning scripts depend on.
@Suite struct PrivacyCLITests {
    @Test func epsilonAndCalibratePrintTheContractedJSON() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-privacy"))
        let common = ["--sampling-rate", "0.01", "--steps", "1000", "--delta", "1e-5", "--json"]
        for accountant in ["pld", "rdp"] {
            let spent = try cluster.json(["privacy", "epsilon", "--noise-multiplier", "1.1", "--accountant", accountant] + common)
            #expect(spent["accountant"] as? String == accountant)
            #expect(spent["noise_multiplier"] as? Double == 1.1)
            #expect(spent["sampling_rate"] as? Double == 0.01)
            #expect(spent["steps"] as? Int == 1000)
            #expect(spent["delta"] as? Double == 1e-5)
            let epsilon = try #require(spent["epsilon"] as? Double)
            #expect(epsilon > 0.5 && epsilon < 3, "\(accountant): ε = \(epsilon)")
            let planned = try cluster.json(["privacy", "calibrate", "--epsilon", "\(epsilon)", "--accountant", accountant] + common)
            let sigma = try #require(planned["noise_multiplier"] as? Double)
            #expect(abs(sigma - 1.1) < 0.01, "calibrate inverts epsilon: σ = \(sigma)")
            #expect((planned["epsilon"] as? Double ?? .infinity) <= epsilon)
        }
        // PLD (the default) is the tighter accountant.
        let pld = try cluster.json(["privacy", "epsilon", "--noise-multiplier", "1.1"] + common)
        let rdp = try cluster.json(["privacy", "epsilon", "--noise-multiplier", "1.1", "--accountant", "rdp"] + common)
        #expect(pld["accountant"] as? String == "pld")
        #expect((pld["epsilon"] as! Double) < (rdp["epsilon"] as! Double))
    }

    @Test func invalidArgumentsExitWithTwoAndSayWhy() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-privacy"))
        let cases: [([String], String)] = [
            (["epsilon", "--noise-multiplier", "1", "--sampling-rate", "1.5", "--steps", "10", "--delta", "1e-5"],
             "sampling rate must be in (0, 1], got 1.5"),
            (["epsilon", "--noise-multiplier=-1", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1e-5"],
             "noise multiplier must be a finite number ≥ 0, got -1.0"),
            (["epsilon", "--noise-multiplier", "1", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1"],
             "delta must be in (0, 1), got 1.0"),
            (["calibrate", "--epsilon", "0", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1e-5"],
             "epsilon must be positive, got 0.0"),
            (["epsilon", "--noise-multiplier", "1", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1e-5",
              "--accountant", "moments"], "--accountant must be pld or rdp, got 'moments'"),
        ]
        for (arguments, message) in cases {
            let result = try cluster.cli(["privacy"] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.err)")
            #expect(result.err.contains(message), "\(arguments): \(result.err)")
        }
    }
}
