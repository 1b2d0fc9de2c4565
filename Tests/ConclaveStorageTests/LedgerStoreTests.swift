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
}
