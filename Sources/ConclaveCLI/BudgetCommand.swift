import ArgumentParser
import ConclaveCrypto
import ConclavePrivacy
import Foundation

/// `conclave budget`: the privacy ledger. So far `verify` of an export, offline (the ledger's pure core and
/// storage exist; registering budgets and charging rounds through the coordinator come next).
struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget", abstract: "Privacy budgets and their ledger.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a privacy-ledger export offline: chain, signatures, every charge recomputed, filters, checkpoints.")
        @Option(help: "The ledger export (JSON).") var ledger: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: ledger)) } catch {
                throw CLIError("cannot read \(ledger): \(error.localizedDescription)")
            }
            let export = try LedgerExport.decode(data, source: ledger)
            let checks = LedgerVerifier.verify(entries: export.signedEntries, checkpoints: export.ledgerCheckpoints, keys: export.publicKeys)
            let passed = checks.allSatisfy(\.passed)
            if json {
                printJSON(["passed": passed, "entries": export.entries.count, "origin": export.origin,
                           "checks": checks.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] },
                           "keys": export.keys.mapValues { Self.fingerprint($0) }])
            } else {
                for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
                for (signer, key) in export.keys.sorted(by: { $0.key < $1.key }) { print("key  \(signer): \(Self.fingerprint(key))") }
            }
            if !passed { throw ExitCode.failure }
        }

        /// SHA-256 of the key, first 16 hex digits: to compare with what the signer publishes.
        static func fingerprint(_ key: Data) -> String {
            var h = SHA256()
            key.withUnsafeBytes { h.update($0) }
            return Array(h.finalize().prefix(8)).hexString
        }
    }
}
