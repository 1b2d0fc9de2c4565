import ConclaveCrypto
import ConclavePrivacy
import ConclaveStorage
import ConclaveTesting
import Foundation
import GRDB
import Testing

/// The privacy ledger in SQLite: entries come back exactly as they were signed (the verifier passes on what is
/// read), a write that does not continue the ledger is refused whole, and rows cannot be updated or deleted.
@Suite struct LedgerStoreTests {
    @Test func theLedgerRoundTripsAndIsAppendOnly() throws {
        let path = Fixtures.temporaryDirectory() + "/c.sqlite"
        let store = try CoordinatorStore(path: path)
        let coordinator = Ed25519KeyPair(), officer = Ed25519KeyPair(), silo = Ed25519KeyPair()
        let keys = ["coordinator": coordinator.publicKey, "privacy-officer/po": officer.publicKey, "silo/s": silo.publicKey]
        let budget = BudgetKey(silo: "s", dataset: "d", unit: "record")
        var ledger = PrivacyLedger()
        _ = try ledger.register(budget, epsilon: 4, delta: 1e-5, actor: "po", time: 1) {
            ["coordinator": coordinator.sign($0), "privacy-officer/po": officer.sign($0)]
        }
        let (charge, charged) = try ledger.charge(budget, mechanism: .subsampledGaussian(samplingRate: 0.02, noiseMultiplier: 1.2, steps: 50),
                                                  run: "run-1", round: 1, modelSHA256: nil, time: 2) { ["coordinator": coordinator.sign($0)] }
        #expect(charged)
        try store.appendLedger(ledger.entries)
        try store.addLedgerCosignature(seq: charge.entry.seq, signer: "silo/s", signature: silo.sign(charge.entry.canonicalBytes))
        let checkpoint = ledger.checkpoint(origin: "conclave/test") { ["coordinator": coordinator.sign($0)] }
        try store.appendLedgerCheckpoint(checkpoint)

        let reopened = try CoordinatorStore(path: path)
        let entries = try reopened.ledgerEntries()
        #expect(entries.map(\.entry) == ledger.entries.map(\.entry))
        let checks = LedgerVerifier.verify(entries: entries, checkpoints: try reopened.ledgerCheckpoints(), keys: keys)
        #expect(checks.allSatisfy { $0.passed }, "\(checks)")
        #expect(try PrivacyLedger(replaying: entries).filters == ledger.filters)

        // Entries that do not continue the ledger are refused, all of them.
        #expect(throws: StorageError.self) { try reopened.appendLedger(ledger.entries) }
        #expect(try reopened.ledgerEntries().count == 2)
        // No update, no delete, even through SQL.
        let db = try DatabaseQueue(path: path)
        for sql in ["UPDATE ledger_entries SET entry = x'00' WHERE seq = 0", "DELETE FROM ledger_entries WHERE seq = 1",
                    "DELETE FROM ledger_cosignatures", "UPDATE ledger_checkpoints SET size = 9"] {
            #expect(throws: (any Error).self, "\(sql)") { try db.write { try $0.execute(sql: sql) } }
        }
        #expect(try reopened.ledgerEntries() == entries)
    }

    /// Someone with the file drops the triggers and edits it: every kind of edit is caught by what `budget
    /// verify` runs on the rows read back, naming the entry (or the read refuses, naming it).
    @Test(arguments: ["edit", "delete", "swap", "truncate", "uncosign", "noncanonical"])
    func editsOfTheDatabaseAreNamed(kind: String) throws {
        let path = Fixtures.temporaryDirectory() + "/c.sqlite"
        let store = try CoordinatorStore(path: path)
        let coordinator = Ed25519KeyPair(), officer = Ed25519KeyPair(), silo = Ed25519KeyPair()
        let keys = ["coordinator": coordinator.publicKey, "privacy-officer/po": officer.publicKey, "silo/s": silo.publicKey]
        let budget = BudgetKey(silo: "s", dataset: "d", unit: "silo")
        var ledger = PrivacyLedger()
        _ = try ledger.register(budget, epsilon: 8, delta: 1e-5, actor: "po", time: 1) {
            ["coordinator": coordinator.sign($0), "privacy-officer/po": officer.sign($0)]
        }
        for round in 1...3 {
            _ = try ledger.charge(budget, mechanism: .subsampledGaussian(samplingRate: 1, noiseMultiplier: 3, steps: 1), run: "r",
                                  round: round, modelSHA256: nil, time: Double(1 + round)) { ["coordinator": coordinator.sign($0)] }
        }
        try store.appendLedger(ledger.entries)
        for e in ledger.entries.dropFirst() {
            try store.addLedgerCosignature(seq: e.entry.seq, signer: "silo/s", signature: silo.sign(e.entry.canonicalBytes))
        }
        try store.appendLedgerCheckpoint(ledger.checkpoint(origin: "conclave/test") { ["coordinator": coordinator.sign($0)] })

        var attacker = Configuration()
        attacker.foreignKeysEnabled = false
        let db = try DatabaseQueue(path: path, configuration: attacker)
        try db.write { db in
            for t in ["ledger_entries", "ledger_cosignatures"] {
                try db.execute(sql: "DROP TRIGGER \(t)_append_only_u; DROP TRIGGER \(t)_append_only_d")
            }
            switch kind {
            case "edit":  // a louder-looking release: the multiplier raised, re-encoded canonically
                var e = ledger.entries[2].entry
                e.mechanism = .subsampledGaussian(samplingRate: 1, noiseMultiplier: 30, steps: 1)
                try db.execute(sql: "UPDATE ledger_entries SET entry = ? WHERE seq = 2", arguments: [Data(e.canonicalBytes)])
            case "delete": try db.execute(sql: "DELETE FROM ledger_entries WHERE seq = 1")
            case "swap":
                try db.execute(sql: "UPDATE ledger_entries SET seq = -1 WHERE seq = 1; UPDATE ledger_entries SET seq = 1 WHERE seq = 2; UPDATE ledger_entries SET seq = 2 WHERE seq = -1")
            case "truncate": try db.execute(sql: "DELETE FROM ledger_cosignatures WHERE seq = 3; DELETE FROM ledger_entries WHERE seq = 3")
            case "uncosign": try db.execute(sql: "DELETE FROM ledger_cosignatures WHERE seq = 2")
            default: try db.execute(sql: "UPDATE ledger_entries SET entry = CAST(' ' || CAST(entry AS TEXT) AS BLOB) WHERE seq = 1")
            }
        }
        let reopened = try CoordinatorStore(path: path)
        let entries: [SignedEntry]
        do { entries = try reopened.ledgerEntries() } catch {
            #expect(kind == "noncanonical" && error.message.contains("entry 1"), "\(kind): \(error)")
            return
        }
        let failed = LedgerVerifier.verify(entries: entries, checkpoints: try reopened.ledgerCheckpoints(), keys: keys).filter { !$0.passed }
        #expect(!failed.isEmpty, "\(kind) was not detected")
        #expect(failed.first?.detail.contains("entry") == true || failed.first?.detail.contains("truncated") == true, "\(kind): \(failed)")
    }
}
