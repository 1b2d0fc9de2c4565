import ConclaveCrypto
import ConclavePrivacy
import ConclaveTesting
import Foundation
import Testing

/// `conclave budget verify --ledger FILE`: an honest export passes every check; an edited, truncated or
/// malformed one fails, exit status 1, naming the entry or the problem.
@Suite struct LedgerCLITests {
    func export(_ dir: String) throws -> String {
        let coordinator = Ed25519KeyPair(), officer = Ed25519KeyPair(), silo = Ed25519KeyPair()
        let budget = BudgetKey(silo: "s", dataset: "d", unit: "record")
        var ledger = PrivacyLedger()
        _ = try ledger.register(budget, epsilon: 4, delta: 1e-5, actor: "po", time: 1) {
            ["coordinator": coordinator.sign($0), "privacy-officer/po": officer.sign($0)]
        }
        for round in 1...3 {
            let (entry, _) = try ledger.charge(budget, mechanism: .subsampledGaussian(samplingRate: 0.02, noiseMultiplier: 1.2, steps: 50),
                                               run: "run-1", round: round, modelSHA256: nil, time: Double(1 + round)) { ["coordinator": coordinator.sign($0)] }
            ledger.cosign(seq: entry.entry.seq, signer: "silo/s", signature: silo.sign(entry.entry.canonicalBytes))
        }
        let checkpoint = ledger.checkpoint(origin: "conclave/test") { ["coordinator": coordinator.sign($0)] }
        let file = dir + "/ledger.json"
        let keys = ["coordinator": coordinator.publicKey, "privacy-officer/po": officer.publicKey, "silo/s": silo.publicKey]
        try LedgerExport(origin: "conclave/test", entries: ledger.entries, checkpoints: [checkpoint], keys: keys).encoded()
            .write(to: URL(fileURLWithPath: file))
        return file
    }

    @Test func verifyPassesAnHonestExportAndNamesTheEditedEntry() throws {
        let cluster = try Cluster(dir: Fixtures.temporaryDirectory("conclave-ledger-cli"), tls: false)
        let file = try export(cluster.dir)
        let ok = try cluster.cli(["budget", "verify", "--ledger", file, "--json"])
        #expect(ok.status == 0, "\(ok.err)")
        let object = try JSONSerialization.jsonObject(with: Data(ok.out.utf8)) as? [String: Any]
        #expect(object?["passed"] as? Bool == true && object?["entries"] as? Int == 4)
        #expect((object?["checks"] as? [[String: Any]])?.map { $0["name"] as? String } == ["chain", "signatures", "charges", "checkpoints"])

        // Edit a charge's noise multiplier in the file: its signatures and the chain break; exit 1, the entry named.
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try text.replacingOccurrences(of: "\"noiseMultiplier\" : 1.2", with: "\"noiseMultiplier\" : 3.2")
            .write(toFile: file + ".edited", atomically: true, encoding: .utf8)
        let edited = try cluster.cli(["budget", "verify", "--ledger", file + ".edited"])
        #expect(edited.status == 1, "\(edited.out)")
        #expect(edited.out.contains("FAIL chain: entry 2 does not follow entry 1"), "\(edited.out)")
        // Truncated JSON and a missing file: a clear error, not a trap.
        try String(text.prefix(text.count / 2)).write(toFile: file + ".cut", atomically: true, encoding: .utf8)
        let cut = try cluster.cli(["budget", "verify", "--ledger", file + ".cut"])
        #expect(cut.status == 1 && cut.err.contains("not a Conclave ledger export"), "\(cut.err)")
        let missing = try cluster.cli(["budget", "verify", "--ledger", cluster.dir + "/nope.json"])
        #expect(missing.status == 1 && missing.err.contains("cannot read"), "\(missing.err)")
    }
}
