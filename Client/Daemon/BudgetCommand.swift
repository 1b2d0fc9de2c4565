import ArgumentParser
import ConclaveAgent
import ConclaveConfig
import ConclaveCrypto
import ConclavePrivacy
import ConclaveSupport
import Foundation

/// `conclave-client budget`: this silo's own view of its privacy budgets, from its own ledger (the agent need
/// not run, the coordinator need not be reachable).
struct Budget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "budget", abstract: "This silo's privacy budgets, from its own ledger.",
                                                    subcommands: [Show.self, Verify.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each budget: the registered cap this silo adopted, its own cap, what it spent.")
        @Option(name: .long, help: "Path to silo.toml.") var config: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let settings = try loadSettings(config)
            let views: [SiloBudgetView]
            do { views = try SiloBudgetView.read(path: settings.privacyLedgerPath, maxEpsilon: settings.maxEpsilon) } catch {
                throw fail("\(error)")
            }
            if json {
                let budgets = views.map { v -> [String: Any] in
                    ["silo": v.budget.silo, "dataset": v.budget.dataset, "unit": v.budget.unit,
                     "epsilon_cap": v.epsilonCap as Any? ?? NSNull(), "delta_cap": v.deltaCap as Any? ?? NSNull(),
                     "max_epsilon": v.localCap as Any? ?? NSNull(), "epsilon_spent": v.epsilonSpent,
                     "epsilon_remaining": v.epsilonCap.map { max(0, $0 - v.epsilonSpent) } as Any? ?? NSNull(),
                     "releases": v.releases, "runs": v.runs]
                }
                let data = try JSONSerialization.data(withJSONObject: ["budgets": budgets], options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            guard !views.isEmpty else { print("no releases and no adopted budgets in \(settings.privacyLedgerPath)"); return }
            for v in views {
                let cap = v.epsilonCap.map { "cap ε ≤ \($0) at δ = \(v.deltaCap ?? 0)" } ?? "no registered budget"
                let own = v.localCap.map { ", own cap ε ≤ \($0)" } ?? ""
                print(String(format: "%@: %@%@; spent ε %.4f in %d releases over %d runs", v.budget.description, cap, own, v.epsilonSpent, v.releases, v.runs))
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check this silo's own ledger, and compare it with a coordinator export (`conclave budget export`).")
        @Option(name: .long, help: "Path to silo.toml.") var config: String
        @Option(name: .long, help: "A coordinator ledger export to compare with.") var against: String?

        func run() throws {
            let settings = try loadSettings(config)
            let key = try IdentityKeyFile.loadOrCreate(path: settings.identityKeyPath).key
            var export: LedgerExport?
            if let against {
                let data: Data
                do { data = try Data(contentsOf: URL(fileURLWithPath: against)) } catch {
                    throw ValidationError("cannot read \(against): \(error.localizedDescription)")
                }
                do { export = try LedgerExport.decode(data, source: against) } catch { throw ValidationError(error.message) }
            }
            let checks: [LedgerVerifier.Check]
            do {
                checks = try SiloLedgerAudit.verify(path: settings.privacyLedgerPath, siloID: settings.siloID, publicKey: key.publicKey,
                                                    maxEpsilon: settings.maxEpsilon, against: export)
            } catch { throw fail("\(error)") }
            for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
            if !checks.allSatisfy(\.passed) { throw ExitCode.failure }
        }
    }
}

/// A run-time failure (not a usage error): one line on standard error, exit status 1.
private func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode.failure
}

private func loadSettings(_ path: String) throws -> SiloConfig {
    do { return try SiloConfig.load(path: path) } catch { throw ValidationError(error.message) }
}
